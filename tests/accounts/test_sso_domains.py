"""SSO's allowed domains and the no-linking rule, against the real local OpenID provider and SAML
IdP: only identities whose e-mail domain the provider lists are provisioned, linked or signed in;
an account holding a control-panel role is never linked. Each refusal tells the person why on the
sign-in page and is recorded as ``sso.login_failed``."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User, UserSession
from audit.models import AuditEvent
from tests.accounts.sso_world import (
    SP_ENTITY_ID,
    connect_oidc,
    connect_saml,
    oidc_callback,
    oidc_sign_in,
    saml_acs,
    saml_sign_in,
)
from tests.conftest import build_world, member
from tests.factories import UserFactory
from tests.identity_providers import openid_provider, saml_idp

pytestmark = [
    pytest.mark.django_db(databases=["default", "secrets"]),
    pytest.mark.usefixtures("loopback_idp_allowed"),
]


@pytest.fixture(scope="module")
def oidc_idp():
    provider = openid_provider.start([oidc_callback()])
    yield provider
    openid_provider.stop(provider)


@pytest.fixture(scope="module")
def saml():
    provider = saml_idp.start(SP_ENTITY_ID, [saml_acs("http://localhost")])
    yield provider
    saml_idp.stop(provider)


@pytest.fixture
def world():
    return build_world()


def _refused_with(client: Client, response, reason_part: str, page_part: str) -> None:
    """The sign-in went back to the login page with ``page_part`` on it, no one is signed in, and
    the ledger has the refusal with ``reason_part``."""
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    page = client.get(response["Location"])
    assert page_part in page.content.decode()
    assert "_auth_user_id" not in client.session
    failed = AuditEvent.objects.filter(action="sso.login_failed").latest("occurred_at")
    assert reason_part in failed.data["reason"], failed.data


def test_oidc_identity_outside_the_allowed_domains_is_not_provisioned(world, oidc_idp, client):
    """GIVEN Acme's OpenID provider lists only acme.test WHEN Ada (ada@acme.example) signs in
    THEN no account is made, the login page says her domain is not allowed, the ledger says why."""
    connect_oidc(world, oidc_idp, domains=("acme.test",))
    response = oidc_sign_in(client, "ada", "ada-idp-pass")
    _refused_with(client, response, "acme.example is not allowed", "Addresses in acme.example cannot sign in")
    assert not User.objects.filter(email="ada@acme.example").exists()


def test_oidc_identity_in_an_allowed_domain_is_provisioned(world, oidc_idp, client):
    connect_oidc(world, oidc_idp, domains=("acme.example",))
    response = oidc_sign_in(client, "ada", "ada-idp-pass")
    assert response.status_code == 302
    assert "/accounts/login/" not in response["Location"]
    assert User.objects.get(email="ada@acme.example").organization == world.org


def test_an_existing_link_stops_working_when_its_domain_is_removed(world, oidc_idp, client):
    """GIVEN Ada signed in once through the provider WHEN an administrator removes acme.example
    from its allowed domains THEN her next SSO sign-in is refused."""
    from accounts.sso import services

    provider = connect_oidc(world, oidc_idp, domains=("acme.example",))
    oidc_sign_in(client, "ada", "ada-idp-pass")
    assert UserSession.objects.filter(user__email="ada@acme.example").exists()
    services.identity_provider_update(
        actor=world.users["platform_admin"], provider=provider, allowed_domains=["acme.test"]
    )
    browser = Client()
    response = oidc_sign_in(browser, "ada", "ada-idp-pass")
    _refused_with(browser, response, "acme.example is not allowed", "cannot sign in through Acme login")


@pytest.mark.parametrize("role", ["platform_admin", "compliance_officer", "auditor", "workspace_owner"])
def test_oidc_never_links_an_account_holding_a_control_panel_role(world, oidc_idp, client, role):
    """GIVEN ada@acme.example is an Acme account holding a control-panel role WHEN the identity
    provider vouches for that address THEN it is not linked, nobody is signed in, the page says
    to use the password and second factor, the ledger says why."""
    account = UserFactory(organization=world.org, email="ada@acme.example")
    member(account, role, None if role == "platform_admin" else world.ws)
    connect_oidc(world, oidc_idp)
    response = oidc_sign_in(client, "ada", "ada-idp-pass")
    _refused_with(client, response, "control-panel role", "Sign in with your password and second factor")
    assert not AuditEvent.objects.filter(action="sso.account_linked").exists()
    assert not UserSession.objects.filter(user=account).exists()
    assert not account.socialaccount_set.exists()


def test_oidc_links_an_account_without_control_panel_role(world, oidc_idp, client):
    """GIVEN ada@acme.example is a builder (no control-panel role) WHEN she signs in THEN linked."""
    account = UserFactory(organization=world.org, email="ada@acme.example")
    member(account, "workflow_builder", world.ws)
    connect_oidc(world, oidc_idp)
    oidc_sign_in(client, "ada", "ada-idp-pass")
    assert AuditEvent.objects.filter(action="sso.account_linked", target_id=str(account.pk)).exists()
    assert account.socialaccount_set.exists()


@pytest.fixture
def saml_client():
    return Client(HTTP_HOST="localhost")


def test_saml_identity_outside_the_allowed_domains_is_refused(world, saml, saml_client):
    connect_saml(world, saml, domains=("acme.test",))
    response, _ = saml_sign_in(saml_client, saml, "grace")
    _refused_with(saml_client, response, "acme.example is not allowed", "Addresses in acme.example")
    assert not User.objects.filter(email="grace@acme.example").exists()


def test_saml_never_links_an_account_holding_a_control_panel_role(world, saml, saml_client):
    account = UserFactory(organization=world.org, email="grace@acme.example")
    member(account, "compliance_officer", world.ws)
    connect_saml(world, saml)
    response, _ = saml_sign_in(saml_client, saml, "grace")
    _refused_with(saml_client, response, "control-panel role", "cannot sign in through single sign-on")
    assert not account.socialaccount_set.exists()
