"""SSO through a real OpenID provider (oidc-provider on 127.0.0.1, static client, PKCE):
provisioning, group mappings, the MFA contract, organisation boundaries, password sign-in off."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from accounts.models import SsoMembership, User, UserSession
from audit.models import AuditEvent
from governance.tenancy.models import Membership
from tests.accounts.sso_world import connect_oidc, oidc_callback, oidc_sign_in, start_oidc_login
from tests.conftest import build_world
from tests.identity_providers import openid_provider

pytestmark = [
    pytest.mark.django_db(databases=["default", "secrets"]),
    # The test OpenID provider listens on http://127.0.0.1: the operator allow-lists it.
    pytest.mark.usefixtures("loopback_idp_allowed"),
]


@pytest.fixture(scope="module")
def idp():
    provider = openid_provider.start([oidc_callback(), oidc_callback(slug="acme-oidc-2")])
    yield provider
    openid_provider.stop(provider)


@pytest.fixture
def world():
    return build_world()


def test_authorization_request_uses_pkce_nonce_and_state(world, idp, client):
    """GIVEN a connected OpenID provider WHEN the sign-in starts THEN the authorization request
    carries an S256 PKCE challenge, a nonce and a state, and no query parameter can add more."""
    connect_oidc(world, idp)
    response = client.post("/accounts/oidc/acme-oidc/login/?auth_params=nonce%3Dfixed&scope=admin")
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["nonce"][0] != "fixed"
    assert len(query["nonce"][0]) >= 32
    assert query["state"][0]
    assert "admin" not in query["scope"][0]


def test_first_sign_in_provisions_user_with_mapped_role_only(world, idp, client):
    """GIVEN a mapping portal-builders → builder in ws WHEN Ada signs in for the first time THEN an
    account in Acme exists with that membership only, nothing staff-like, all in the ledger."""
    provider = connect_oidc(world, idp)
    response = oidc_sign_in(client, "ada", "ada-idp-pass")
    assert response.status_code == 302, response.content[:500]
    assert "/login" not in response["Location"]
    ada = User.objects.get(email="ada@acme.example")
    assert ada.organization_id == world.org.pk
    assert not ada.is_superuser
    assert not ada.has_usable_password()
    assert [(m.workspace_id, m.role_id) for m in Membership.objects.filter(user=ada)] == [
        (world.ws.pk, "workflow_builder")
    ]
    assert SsoMembership.objects.filter(membership__user=ada, provider=provider).count() == 1
    assert UserSession.objects.filter(user=ada, ended_at__isnull=True).count() == 1
    actions = list(AuditEvent.objects.filter(organization_id=world.org.pk).values_list("action", flat=True))
    for expected in ("sso.user_provisioned", "membership.created", "login.succeeded", "sso.login"):
        assert expected in actions
    login = AuditEvent.objects.get(action="login.succeeded", actor_id=ada.pk)
    assert login.data["method"] == "sso:acme-oidc"


def test_unmapped_groups_give_no_role(world, idp, client):
    """GIVEN Bob is only in portal-viewers (no mapping) WHEN he signs in THEN he has no membership."""
    connect_oidc(world, idp)
    oidc_sign_in(client, "bob", "bob-idp-pass")
    bob = User.objects.get(email="bob@acme.example")
    assert not Membership.objects.filter(user=bob).exists()


def test_later_sign_in_reapplies_mapping_and_keeps_manual_roles(world, idp, client):
    """GIVEN Ada signed in once and the mapping was then removed, and she holds a hand-given role
    in the sibling workspace WHEN she signs in again THEN the mapped membership is gone, the
    hand-given one stays, and the removal is recorded."""
    from accounts.sso import services
    from tests.conftest import member

    provider = connect_oidc(world, idp)
    oidc_sign_in(client, "ada", "ada-idp-pass")
    ada = User.objects.get(email="ada@acme.example")
    member(ada, "viewer", world.sibling)
    services.group_mapping_delete(actor=world.users["platform_admin"], mapping=provider.group_mappings.get())
    client.logout()
    oidc_sign_in(client, "ada", "ada-idp-pass")
    assert [(m.workspace_id, m.role_id) for m in Membership.objects.filter(user=ada)] == [
        (world.sibling.pk, "viewer")
    ]
    removed = AuditEvent.objects.get(action="membership.removed", data__user="ada@acme.example")
    assert removed.data["via"] == "sso:acme-oidc"


def test_existing_account_of_same_organisation_is_linked(world, idp, client):
    """GIVEN an Acme account with Ada's address WHEN Ada signs in THEN that account is used."""
    from tests.factories import UserFactory

    existing = UserFactory(organization=world.org, email="ada@acme.example")
    connect_oidc(world, idp)
    oidc_sign_in(client, "ada", "ada-idp-pass")
    assert User.objects.filter(email="ada@acme.example").count() == 1
    assert AuditEvent.objects.filter(action="sso.account_linked", target_id=str(existing.pk)).exists()


def test_account_of_another_organisation_is_never_taken_over(world, idp, client):
    """GIVEN Eve's IdP account claims owner@globex.example, an address of a Globex account WHEN she
    signs in through Acme's provider THEN she is refused, recorded, and no session starts."""
    from tests.factories import UserFactory

    victim = UserFactory(organization=world.foreign_org, email="owner@globex.example")
    # Even a provider that (wrongly) lists the other organisation's domain never takes the account.
    connect_oidc(world, idp, domains=("acme.example", "globex.example"))
    response = oidc_sign_in(client, "eve", "eve-idp-pass")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert not UserSession.objects.filter(user=victim).exists()
    failed = AuditEvent.objects.get(action="sso.login_failed")
    assert "another organisation" in failed.data["reason"]


@pytest.mark.parametrize(
    ("login", "password", "trust", "expected"),
    [
        ("ada", "ada-idp-pass", True, {"provider": "acme-oidc", "claim": "amr:mfa"}),
        ("bob", "bob-idp-pass", True, None),  # amr pwd only: local MFA is demanded
        ("ada", "ada-idp-pass", False, None),  # the IdP's MFA is not trusted
    ],
)
def test_mfa_via_idp_only_when_trusted_and_claimed(world, idp, client, login, password, trust, expected):
    """GIVEN the provider trusts (or not) the IdP's MFA claim 'mfa' WHEN someone signs in THEN the
    session says mfa_via_idp only when trusted and the ID token's amr carries it."""
    connect_oidc(world, idp, trust_mfa=trust)
    oidc_sign_in(client, login, password)
    value = client.session.get("mfa_via_idp")
    if expected is None:
        assert value is None
    else:
        assert {k: value[k] for k in ("provider", "claim")} == expected
        assert value["at"]
    event = AuditEvent.objects.filter(action="sso.login").latest("occurred_at")
    assert event.data["mfa_via_idp"] == (expected or {}).get("claim")


def test_acr_value_counts_when_accepted(world, idp, client):
    """GIVEN acr urn:portal:test:mfa is accepted WHEN Ada signs in THEN the acr is the claim."""
    connect_oidc(world, idp, trust_mfa=True, accepted=("urn:portal:test:mfa",))
    oidc_sign_in(client, "ada", "ada-idp-pass")
    assert client.session["mfa_via_idp"]["claim"] == "acr:urn:portal:test:mfa"


def test_password_sign_in_refused_when_organisation_requires_sso(world, idp, client):
    """GIVEN Acme switched password sign-in off WHEN an Acme user signs in with the right password
    THEN the portal refuses exactly as for a wrong one (the answer tells nobody whether the
    password was right), records why, and starts no session."""
    from accounts.sso import services
    from tests.conftest import PASSWORD

    connect_oidc(world, idp)
    services.sign_in_policy_set(
        actor=world.users["platform_admin"], organization=world.org, local_password_disabled=True
    )
    viewer = world.users["viewer"]
    viewer.set_password(PASSWORD)
    viewer.save()
    right = client.post("/accounts/login/", {"login": viewer.email, "password": PASSWORD})
    wrong = client.post("/accounts/login/", {"login": viewer.email, "password": "not the password"})
    assert right.status_code == wrong.status_code == 200
    assert right.context["form"].errors == wrong.context["form"].errors
    assert not UserSession.objects.filter(user=viewer).exists()
    failed = AuditEvent.objects.filter(action="login.failed").order_by("occurred_at", "id")
    assert [event.data["reason"] for event in failed] == ["local_password_disabled"] * 2
    # Another organisation's people still sign in with their password.
    foreign = world.foreign_user
    foreign.set_password(PASSWORD)
    foreign.save()
    client.post("/accounts/login/", {"login": foreign.email, "password": PASSWORD})
    assert UserSession.objects.filter(user=foreign).exists()


def test_disabled_provider_is_not_offered(world, idp, client):
    """GIVEN the provider is disabled WHEN the sign-in starts THEN there is nothing to start."""
    from accounts.sso import services

    provider = connect_oidc(world, idp)
    services.identity_provider_update(actor=world.users["platform_admin"], provider=provider, enabled=False)
    assert client.post("/accounts/oidc/acme-oidc/login/").status_code == 404
    assert "Acme login" not in client.get("/accounts/login/").content.decode()


def test_sign_in_page_offers_the_provider(world, idp, client):
    connect_oidc(world, idp)
    assert start_oidc_login(client).startswith(idp.issuer)
    assert "Acme login" in client.get("/accounts/login/").content.decode()
