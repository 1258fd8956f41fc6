"""SSO through a real SAML IdP (pysaml2, RSA-SHA256, keys made at test time): provisioning, group
mappings, the MFA contract from AuthnContextClassRef, and refused responses."""

from __future__ import annotations

import base64

import pytest

from accounts.models import User, UserSession
from audit.models import AuditEvent
from governance.tenancy.models import Membership
from tests.accounts.sso_world import (
    SP_ENTITY_ID,
    connect_saml,
    post_to_acs,
    saml_acs,
    saml_request_of,
    saml_sign_in,
    start_saml_login,
)
from tests.conftest import build_world
from tests.identity_providers import saml_idp
from tests.identity_providers.saml_idp import MFA_CONTEXT

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])


@pytest.fixture(scope="module")
def idp():
    provider = saml_idp.start(SP_ENTITY_ID, [saml_acs("http://localhost")])
    yield provider
    saml_idp.stop(provider)


@pytest.fixture
def client():
    """python3-saml reads the Host header, which every browser sends (Django's test client does not)."""
    from django.test import Client

    return Client(HTTP_HOST="localhost")


@pytest.fixture
def world():
    return build_world()


def _refused(client, reason_part: str) -> None:
    failed = AuditEvent.objects.filter(action="sso.login_failed").latest("occurred_at")
    assert reason_part in failed.data["reason"], failed.data
    assert failed.data["provider"] == "acme-saml"
    assert "_auth_user_id" not in client.session


def test_first_sign_in_provisions_user_with_mapped_role(world, idp, client):
    """GIVEN portal-builders → builder WHEN Grace signs in through SAML THEN her account exists in
    Acme with that membership only, a session starts, and the sign-in is in the ledger."""
    connect_saml(world, idp)
    response, _ = saml_sign_in(client, idp, "grace")
    assert response.status_code == 302, response.content[:800]
    assert "/login" not in response["Location"]
    grace = User.objects.get(email="grace@acme.example")
    assert grace.organization_id == world.org.pk
    assert [(m.workspace_id, m.role_id) for m in Membership.objects.filter(user=grace)] == [
        (world.ws.pk, "workflow_builder")
    ]
    assert UserSession.objects.filter(user=grace, ended_at__isnull=True).count() == 1
    assert AuditEvent.objects.get(action="sso.login").data["provider"] == "acme-saml"


@pytest.fixture
def connected(world, idp):
    return connect_saml(world, idp)


def test_authn_context_is_the_mfa_claim_when_trusted(world, idp, client):
    """GIVEN the provider trusts the multipleauthn AuthnContextClassRef WHEN Grace (MFA) and Hal
    (password only) sign in THEN only Grace's session says mfa_via_idp."""
    connect_saml(world, idp, trust_mfa=True, accepted=(MFA_CONTEXT,))
    saml_sign_in(client, idp, "grace")
    assert client.session["mfa_via_idp"]["claim"] == f"AuthnContextClassRef:{MFA_CONTEXT}"
    client.logout()
    saml_sign_in(client, idp, "hal")
    assert "mfa_via_idp" not in client.session


def test_tampered_response_is_refused(connected, idp, client):
    """GIVEN a signed response whose e-mail was changed after signing WHEN it reaches the ACS THEN
    the signature check refuses it, the refusal is recorded, and no session starts."""
    saml_request, relay = saml_request_of(start_saml_login(client))
    xml = base64.b64decode(idp.respond(idp.parse_request(saml_request), "hal")).decode()
    tampered = xml.replace("hal@acme.example", "grace@acme.example")
    assert tampered != xml
    post_to_acs(client, base64.b64encode(tampered.encode()).decode(), relay)
    _refused(client, "saml")
    assert not UserSession.objects.exists()
    assert not User.objects.filter(email__in=["hal@acme.example", "grace@acme.example"]).exists()


def test_wrong_audience_is_refused(connected, idp, client):
    """GIVEN a correctly signed response meant for another service provider WHEN it is posted to
    our ACS THEN it is refused (audience), recorded, no session."""
    saml_request, relay = saml_request_of(start_saml_login(client))
    response = idp.respond(
        idp.parse_request(saml_request), "grace", audience="https://other-service.example/sp"
    )
    post_to_acs(client, response, relay)
    _refused(client, "saml")
    assert not UserSession.objects.exists()


def test_replayed_assertion_is_refused(connected, idp, client):
    """GIVEN Grace signed in with a response WHEN the same response is posted again (her sign-in
    ended, a new one started) THEN it is refused, recorded, and no second session starts."""
    _, saml_response = saml_sign_in(client, idp, "grace")
    assert "_auth_user_id" in client.session
    client.logout()
    start_saml_login(client)
    post_to_acs(client, saml_response)
    _refused(client, "replayed")
    assert UserSession.objects.count() == 1


def test_assertion_id_is_used_once():
    """GIVEN an assertion id consumed once WHEN it is consumed again THEN it is a replay."""
    from accounts.sso.services import SsoRefusedError, saml_assertion_consume

    world = build_world()
    from tests.identity_providers.common import rsa_key, self_signed_cert

    cert = self_signed_cert(rsa_key(), "idp").decode()
    provider = connect_saml(world, saml_idp.SamlIdP("https://idp.example", "https://idp.example/metadata", cert,
                                                    None, None, None))  # fmt: skip
    saml_assertion_consume(provider=provider, assertion_id="id-1", not_on_or_after=None)
    with pytest.raises(SsoRefusedError, match="replayed"):
        saml_assertion_consume(provider=provider, assertion_id="id-1", not_on_or_after=None)
