"""The key pages of the control panel: rotating a data key and bringing one's own key go through
the services, with field errors for bad input."""

from __future__ import annotations

import base64

import pytest
from django.urls import reverse

from governance.crypto.models import DataKey, KeyEncryptionKey, RotationJob
from workflows.credentials.services import credential_create

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])


def test_an_owner_rotates_a_data_key_from_its_page(
    world, integration, client, django_capture_on_commit_callbacks
):
    owner = world.users["workspace_owner"]
    credential_create(actor=owner, integration=integration, name="k", value="value-to-move-1")
    data_key = DataKey.objects.get(workspace=world.ws, purpose="credentials")
    client.force_login(owner)
    listing = client.get(reverse("admin:crypto_datakey_changelist")).content.decode()
    url = reverse("admin:crypto_datakey_rotate", args=[data_key.pk])
    assert url in listing
    assert "1 value" in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    job = RotationJob.objects.get()
    assert response["Location"] == reverse("admin:crypto_rotationjob_change", args=[job.pk])
    assert "100%" in client.get(response["Location"]).content.decode()


def test_officers_see_keys_but_cannot_rotate(world, integration, client):
    credential_create(actor=world.users["workspace_owner"], integration=integration, name="k", value="v" * 12)
    data_key = DataKey.objects.get(workspace=world.ws, purpose="credentials")
    client.force_login(world.users["compliance_officer"])
    assert client.get(reverse("admin:crypto_datakey_changelist")).status_code == 200
    assert client.post(reverse("admin:crypto_datakey_rotate", args=[data_key.pk])).status_code == 403
    assert not RotationJob.objects.exists()


def test_byok_page_imports_material_and_shows_field_errors(world, client):
    client.force_login(world.users["workspace_owner"])
    url = reverse("admin:crypto_keyencryptionkey_byok")
    bad = client.post(url, {"workspace": world.ws.pk, "provider": "local", "material_b64": "c2hvcnQ="})
    assert bad.status_code == 200
    assert "32 bytes" in bad.content.decode()
    material = base64.b64encode(bytes(range(32))).decode()
    good = client.post(url, {"workspace": world.ws.pk, "provider": "local", "material_b64": material})
    assert good.status_code == 302
    kek = KeyEncryptionKey.objects.get(workspace=world.ws)
    assert kek.origin == "imported"
    assert material not in client.get(reverse("admin:crypto_keyencryptionkey_changelist")).content.decode()


def test_the_byok_page_is_for_workspace_owners_only(world, client):
    for role in ("platform_admin", "compliance_officer", "auditor"):
        client.force_login(world.users[role])
        assert client.get(reverse("admin:crypto_keyencryptionkey_byok")).status_code == 403
