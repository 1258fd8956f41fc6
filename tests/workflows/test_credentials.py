"""Credentials in the secrets store: write-only, versioned, rotated without downtime."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from governance.access.decision import AccessDenied
from workflows.credentials import services
from workflows.credentials.models import Credential, CredentialVersion
from workflows.integrations.models import Integration

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])


@pytest.fixture
def integration(world):
    return Integration.objects.create(workspace=world.ws, name="CRM", slug="crm", kind="crm")


def test_the_store_is_its_own_database_and_the_main_one_has_no_credential_table(world, integration):
    services.credential_create(actor=world.users["workspace_owner"], integration=integration, name="k",
                               value="value-in-the-store")  # fmt: skip
    assert Credential.objects.using("secrets").count() == 1
    main, store = connections["default"], connections["secrets"]
    assert main.settings_dict["NAME"] != store.settings_dict["NAME"]
    assert "workflows_credential" not in main.introspection.table_names()
    assert "workflows_credentialversion" in store.introspection.table_names()
    assert "audit_auditevent" not in store.introspection.table_names()


def test_rotation_stage_test_promote_then_grace_then_revoked(world, integration):
    """GIVEN an active value WHEN a new one is staged, tested and promoted THEN executions that
    started with the old one still get it during the grace period; afterwards it is erased."""
    owner = world.users["workspace_owner"]
    credential = services.credential_create(
        actor=owner, integration=integration, name="k", value="old-value-111"
    )
    staged = services.credential_stage(actor=owner, credential=credential, value="new-value-222")
    assert services.credential_value_resolve(credential_id=credential.pk) == "old-value-111"
    services.credential_test(
        actor=owner, version=staged, probe=lambda integ, value: (value == "new-value-222", "ok")
    )
    staged.refresh_from_db(using="secrets")
    assert staged.test_ok is True
    services.credential_promote(actor=owner, version=staged)
    assert services.credential_value_resolve(credential_id=credential.pk) == "new-value-222"
    # An execution pinned to version 1 finishes with it during the grace period.
    assert services.credential_value_resolve(credential_id=credential.pk, version_number=1) == "old-value-111"
    later = timezone.now() + timedelta(hours=2)
    with pytest.raises(ValidationError):
        services.credential_value_resolve(credential_id=credential.pk, version_number=1, now=later)
    assert services.credential_versions_expire(now=later) == 1
    old = CredentialVersion.objects.using("secrets").get(credential=credential, number=1)
    assert old.status == "revoked"
    assert old.value is None
    events = AuditEvent.objects.filter(action__startswith="credential.").order_by("id")
    actions = list(events.values_list("action", flat=True))
    assert actions == ["credential.created", "credential.version_staged", "credential.version_tested",
                       "credential.version_promoted", "credential.version_revoked"]  # fmt: skip


def test_promoting_twice_is_refused(world, integration):
    owner = world.users["workspace_owner"]
    credential = services.credential_create(
        actor=owner, integration=integration, name="k", value="old-value-111"
    )
    staged = services.credential_stage(actor=owner, credential=credential, value="new-value-222")
    services.credential_promote(actor=owner, version=staged)
    with pytest.raises(ValidationError, match="not staged"):
        services.credential_promote(actor=owner, version=staged)


@pytest.mark.parametrize("role", ["workflow_builder", "workflow_operator", "viewer", "auditor",
                                  "compliance_officer", "platform_admin"])  # fmt: skip
def test_only_workspace_owners_manage_credentials(world, integration, role):
    with pytest.raises(AccessDenied):
        services.credential_create(actor=world.users[role], integration=integration, name="k", value="v" * 12)
    assert not Credential.objects.using("secrets").exists()


@pytest.mark.parametrize(("value", "message"), [("", "Enter"), ("x" * 20_000, "at most"), ("a\x00b", "NUL")])
def test_bad_values_are_field_errors(world, integration, value, message):
    with pytest.raises(ValidationError, match=message):
        services.credential_create(actor=world.users["workspace_owner"], integration=integration, name="k",
                                   value=value)  # fmt: skip


def test_admin_add_and_rotate_are_write_only(world, integration, client):
    owner = world.users["workspace_owner"]
    client.force_login(owner)
    add = reverse("admin:workflows_credential_add")
    form = client.get(add).content.decode()
    assert 'type="password"' in form
    response = client.post(
        add, {"integration": integration.pk, "name": "api_key", "value": "admin-typed-secret-1"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    credential = Credential.objects.using("secrets").get()
    listing = client.get(reverse("admin:workflows_credential_changelist")).content.decode()
    fingerprint = credential.versions.using("secrets").get().fingerprint
    assert fingerprint in listing
    assert "admin-typed-secret-1" not in listing
    change = reverse("admin:workflows_credential_change", args=[credential.pk])
    page = client.get(change).content.decode()
    assert "admin-typed-secret-1" not in page
    assert fingerprint in page
    client.post(change, {"new_value": "admin-typed-secret-2", "promote": "on",
                         "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"})  # fmt: skip
    assert services.credential_value_resolve(credential_id=credential.pk) == "admin-typed-secret-2"


def test_admin_hides_other_workspaces_credentials(world, integration, client):
    services.credential_create(actor=world.users["workspace_owner"], integration=integration, name="k",
                               value="value-in-the-store")  # fmt: skip
    from governance.tenancy.models import Membership

    client.force_login(Membership.objects.get(workspace=world.sibling, role_id="workspace_owner").user)
    listing = client.get(reverse("admin:workflows_credential_changelist"))
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == []
    credential = Credential.objects.using("secrets").get()
    assert client.get(reverse("admin:workflows_credential_change", args=[credential.pk])).status_code in (
        302,
        403,
        404,
    )


def test_unavailable_keys_are_a_clear_503_and_nothing_is_written(
    world, integration, client, settings, tmp_path
):
    """GIVEN a key file that is gone WHEN a credential is added in the control panel or the API
    THEN the answer says the keys are unavailable (503), and no row is written."""
    from rest_framework.test import APIClient

    from governance.crypto import keyring, providers

    owner = world.users["workspace_owner"]
    services.credential_create(actor=owner, integration=integration, name="first", value="value-one-111")
    key_file = tmp_path / "elsewhere" / "kek.json"
    settings.CRYPTO_LOCAL_KEY_FILE = str(key_file)  # the file the data keys need is not there
    providers.forget_providers()
    keyring.forget_keys()
    client.force_login(owner)
    page = client.post(reverse("admin:workflows_credential_add"),
                       {"integration": integration.pk, "name": "second", "value": "value-two-222"})  # fmt: skip
    assert page.status_code == 503
    assert "encryption keys are unavailable" in page.content.decode()
    api = APIClient()
    api.force_authenticate(owner)
    answer = api.post(reverse("api-credential-list"), {"integration": integration.pk, "name": "third",
                                                        "value": "value-three-333"}, format="json")  # fmt: skip
    assert answer.status_code == 503
    assert "encryption keys are unavailable" in answer.json()["detail"]
    assert list(Credential.objects.using("secrets").values_list("name", flat=True)) == ["first"]
