"""Configuring SSO: identity providers, group mappings and the sign-in policy — who may, what is
refused with which field error, what the ledger says (never the secret)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts.models import IdentityProvider, ProviderKind
from accounts.sso import services
from audit.models import AuditEvent
from governance.crypto.fields import raw_value
from governance.tenancy.models import Role
from tests.conftest import build_world

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

OIDC = {"kind": ProviderKind.OIDC, "name": "Acme login", "slug": "acme-oidc", "oidc_issuer": "https://idp.example/",
        "oidc_client_id": "portal", "allowed_domains": ["acme.test"]}  # fmt: skip


@pytest.fixture
def world():
    return build_world()


def test_secret_is_stored_encrypted_and_never_in_the_ledger(world):
    """GIVEN a platform administrator WHEN they connect a provider with a client secret THEN the
    column holds ciphertext, the value reads back, and the event only says a secret was set."""
    provider = services.identity_provider_create(
        actor=world.users["platform_admin"],
        organization=world.org,
        client_secret="s3cret-value-of-the-client",
        **OIDC,
    )
    provider = IdentityProvider.objects.get(pk=provider.pk)
    assert b"s3cret-value-of-the-client" not in raw_value(provider.__dict__["oidc_client_secret"])
    assert provider.oidc_client_secret == "s3cret-value-of-the-client"
    event = AuditEvent.objects.get(action="identity_provider.created")
    assert event.data["client_secret_set"] is True
    assert "s3cret-value-of-the-client" not in str(event.data)


@pytest.mark.parametrize("role", ["workspace_owner", "compliance_officer", "auditor", "viewer"])
def test_only_platform_administrators_configure_sso(world, role):
    with pytest.raises(PermissionDenied):
        services.identity_provider_create(actor=world.users[role], organization=world.org, **OIDC)
    assert not IdentityProvider.objects.exists()


def test_missing_fields_are_field_errors(world):
    with pytest.raises(ValidationError) as error:
        services.identity_provider_create(
            actor=world.users["platform_admin"], organization=world.org, kind=ProviderKind.SAML, name="S", slug="s",
            saml_idp_x509_cert="not a certificate", trust_idp_mfa=True,
        )  # fmt: skip
    assert set(error.value.message_dict) == {
        "saml_idp_entity_id", "saml_idp_sso_url", "saml_idp_x509_cert", "accepted_mfa_claims", "allowed_domains"
    }  # fmt: skip


def test_group_mappings_give_workspace_roles_of_the_organisation_only(world):
    admin = world.users["platform_admin"]
    provider = services.identity_provider_create(actor=admin, organization=world.org, **OIDC)
    with pytest.raises(ValidationError) as error:
        services.group_mapping_create(
            actor=admin,
            provider=provider,
            group="admins",
            workspace=world.ws,
            role=Role.objects.get(pk="platform_admin"),
        )
    assert "role" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        services.group_mapping_create(
            actor=admin,
            provider=provider,
            group="x",
            workspace=world.foreign,
            role=Role.objects.get(pk="viewer"),
        )
    assert "workspace" in error.value.message_dict


def test_password_sign_in_cannot_be_switched_off_without_a_provider(world):
    admin = world.users["platform_admin"]
    with pytest.raises(ValidationError):
        services.sign_in_policy_set(actor=admin, organization=world.org, local_password_disabled=True)
    services.identity_provider_create(actor=admin, organization=world.org, **OIDC)
    policy = services.sign_in_policy_set(actor=admin, organization=world.org, local_password_disabled=True)
    assert policy.local_password_disabled
    assert AuditEvent.objects.get(action="sign_in_policy.changed").data == {"local_password_disabled": True}


def test_control_panel_adds_a_provider_through_the_service(world, client):
    """GIVEN a platform administrator in the control panel WHEN they add an OIDC provider THEN it is
    saved for their organisation with the secret encrypted, and the list shows its redirect URI."""
    client.force_login(world.users["platform_admin"])
    response = client.post(
        reverse("admin:accounts_identityprovider_add"),
        {"name": "Acme login", "slug": "acme-oidc", "kind": "oidc", "enabled": "on", "oidc_issuer": "https://idp.example/",
         "oidc_client_id": "portal", "client_secret": "panel-secret-value", "groups_claim": "groups",
         "accepted_mfa_claims": "mfa, otp", "trust_idp_mfa": "on", "allowed_domains": "acme.test,\n@Acme.Example"},
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors
    provider = IdentityProvider.objects.get(slug="acme-oidc")
    assert provider.organization_id == world.org.pk
    assert provider.accepted_mfa_claims == ["mfa", "otp"]
    assert provider.allowed_domains == ["acme.test", "acme.example"]
    assert provider.oidc_client_secret == "panel-secret-value"
    listing = client.get(reverse("admin:accounts_identityprovider_changelist")).content.decode()
    assert "/accounts/oidc/acme-oidc/login/callback/" in listing


def test_scim_group_changes_apply_the_group_mappings_at_once(world):
    """GIVEN a provider mapping the IdP group "portal-builders" to builder in Ops EU WHEN the IdP
    pushes that group over SCIM with Ada in it THEN Ada is a builder there at once (by her SCIM
    groups, not at her next sign-in); WHEN she is taken out of the group THEN the mapped role goes;
    a role given by hand is never touched; a group of no mapping changes nothing."""
    from governance.tenancy.models import Membership
    from tests.accounts.scim_world import new_user, scim_client

    admin = world.users["platform_admin"]
    provider = services.identity_provider_create(actor=admin, organization=world.org, **OIDC)
    services.group_mapping_create(actor=admin, provider=provider, group="portal-builders", workspace=world.ws,
                                  role=Role.objects.get(pk="workflow_builder"))  # fmt: skip
    scim = scim_client(world)
    ada = scim.post("/Users", new_user("ada")).json()["id"]
    viewer = world.users["viewer"]  # a viewer of Ops EU by hand
    group = scim.post("/Groups", {"displayName": "portal-builders", "externalId": "9f2c",
                                  "members": [{"value": ada}, {"value": str(viewer.pk)}]}).json()  # fmt: skip
    roles = lambda pk: list(Membership.objects.filter(user_id=pk).values_list("workspace_id", "role_id"))  # noqa: E731
    assert roles(ada) == [(world.ws.pk, "workflow_builder")]
    assert roles(viewer.pk) == [(world.ws.pk, "viewer")]
    created = AuditEvent.objects.get(action="membership.created", data__user="ada@acme.test")
    assert created.data["via"] == "sso:acme-oidc"

    other = scim.post("/Groups", {"displayName": "lunch-club", "members": [{"value": ada}]}).json()
    assert roles(ada) == [(world.ws.pk, "workflow_builder")]
    remove = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "remove", "path": f'members[value eq "{ada}"]'}]}  # fmt: skip
    assert scim.patch(f"/Groups/{group['id']}", remove).status_code in (200, 204)
    assert roles(ada) == []
    assert roles(viewer.pk) == [(world.ws.pk, "viewer")]
    assert AuditEvent.objects.filter(action="membership.removed", data__user="ada@acme.test").count() == 1
    assert scim.patch(f"/Groups/{other['id']}", remove).status_code in (200, 204)
    assert roles(ada) == []


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "This field is required."),
        ("not a domain", "is not an e-mail domain"),
        ("ada@acme.test", "is not an e-mail domain"),
        ("localhost", "is not an e-mail domain"),
        ("acme.test, -bad-.example", "is not an e-mail domain"),
    ],
)
def test_control_panel_refuses_bad_allowed_domains_with_a_field_error(world, client, typed, message):
    """GIVEN the provider form WHEN the allowed domains are missing or not domains THEN a field
    error on allowed_domains, nothing saved."""
    client.force_login(world.users["platform_admin"])
    response = client.post(
        reverse("admin:accounts_identityprovider_add"),
        {"name": "Acme login", "slug": "acme-oidc", "kind": "oidc", "enabled": "on", "oidc_issuer": "https://idp.example/",
         "oidc_client_id": "portal", "groups_claim": "groups", "allowed_domains": typed},
    )  # fmt: skip
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(message in text for text in errors["allowed_domains"]), errors
    assert not IdentityProvider.objects.filter(slug="acme-oidc").exists()


def test_a_domain_another_organisation_lists_cannot_be_listed(world):
    """GIVEN Globex's provider lists globex.example WHEN Acme's administrator lists it too THEN a
    field error; a domain no other organisation lists is accepted (also by two own providers)."""
    from tests.accounts.scim_world import _foreign_admin

    globex_admin = _foreign_admin(world)
    services.identity_provider_create(
        actor=globex_admin, organization=world.foreign_org, **{**OIDC, "slug": "globex", "allowed_domains": ["globex.example"]}
    )  # fmt: skip
    admin = world.users["platform_admin"]
    with pytest.raises(ValidationError) as error:
        services.identity_provider_create(
            actor=admin, organization=world.org, **{**OIDC, "allowed_domains": ["acme.test", "globex.example"]}
        )  # fmt: skip
    assert "another organisation" in error.value.message_dict["allowed_domains"][0]
    services.identity_provider_create(actor=admin, organization=world.org, **OIDC)
    services.identity_provider_create(actor=admin, organization=world.org, **{**OIDC, "slug": "acme-2"})
    assert IdentityProvider.objects.filter(organization=world.org).count() == 2
