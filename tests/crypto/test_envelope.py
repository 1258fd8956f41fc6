"""Envelope encryption through the model field: values stored only as ciphertext, bound to their row."""

from __future__ import annotations

import pytest
from django.db import connections

from audit.models import AuditEvent
from governance.crypto import envelope
from governance.crypto.errors import DecryptionError, KeyUnavailableError
from governance.crypto.models import DataKey, KeyEncryptionKey
from workflows.credentials.models import CredentialVersion
from workflows.credentials.services import credential_create

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])


def _raw(version) -> bytes:
    with connections["secrets"].cursor() as cursor:
        cursor.execute("SELECT value FROM workflows_credentialversion WHERE id = %s", [version.pk])
        return bytes(cursor.fetchone()[0])


def _version(credential):
    return CredentialVersion.objects.using("secrets").get(credential=credential)


def test_value_is_stored_as_aes_gcm_ciphertext_and_reads_back(world, integration, key_file):
    """GIVEN a credential WHEN it is saved THEN the column holds a versioned ciphertext naming a
    credentials data key, the key file exists with mode 0600, and the value decrypts on access."""
    credential = credential_create(actor=world.users["workspace_owner"], integration=integration,
                                   name="api_key", value="s3cret-value-123")  # fmt: skip
    version = _version(credential)
    blob = _raw(version)
    assert b"s3cret" not in blob
    header = envelope.header_of(blob)
    assert header.version == 1
    data_key = DataKey.objects.get(pk=header.key_id)
    assert (data_key.workspace_id, data_key.purpose) == (world.ws.pk, "credentials")
    assert version.value == "s3cret-value-123"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert KeyEncryptionKey.objects.filter(workspace__isnull=True, status="active").count() == 1


def test_credentials_and_general_data_use_different_data_keys(world, integration):
    from governance.crypto.keyring import active_key

    credential_create(actor=world.users["workspace_owner"], integration=integration, name="k", value="v" * 20)
    general = active_key(world.ws.pk, "general")
    credentials = DataKey.objects.get(workspace=world.ws, purpose="credentials")
    assert general.key_id != credentials.pk


def test_ciphertext_copied_to_another_row_fails_and_is_recorded(world, integration):
    """A ciphertext is bound to its row: pasted into another row it refuses to decrypt."""
    owner = world.users["workspace_owner"]
    first = _version(
        credential_create(actor=owner, integration=integration, name="a", value="first-secret-1")
    )
    second = _version(
        credential_create(actor=owner, integration=integration, name="b", value="second-secret-2")
    )
    with connections["secrets"].cursor() as cursor:
        cursor.execute(
            "UPDATE workflows_credentialversion SET value = %s WHERE id = %s", [_raw(first), second.pk]
        )
    moved = CredentialVersion.objects.using("secrets").get(pk=second.pk)
    with pytest.raises(DecryptionError, match="belongs to another row"):
        _ = moved.value
    event = AuditEvent.objects.filter(action="crypto.decrypt_failed").get()
    assert event.data["row"] == str(second.pk)
    assert "first-secret" not in event.canonical.decode()


@pytest.mark.parametrize("position", [0, 5, 15, 30, -1])
def test_any_flipped_byte_is_refused(world, integration, position):
    version = _version(credential_create(actor=world.users["workspace_owner"], integration=integration,
                                         name="k", value="a-long-enough-secret"))  # fmt: skip
    blob = bytearray(_raw(version))
    blob[position] ^= 0x01
    with connections["secrets"].cursor() as cursor:
        cursor.execute(
            "UPDATE workflows_credentialversion SET value = %s WHERE id = %s", [bytes(blob), version.pk]
        )
    with pytest.raises(DecryptionError):
        _ = CredentialVersion.objects.using("secrets").get(pk=version.pk).value


def test_filtering_by_plaintext_is_refused(world, integration):
    from governance.crypto.fields import _Plain

    with pytest.raises(TypeError, match="encrypted"):
        list(CredentialVersion.objects.using("secrets").filter(value=_Plain("x")))


def test_missing_key_file_is_a_clear_error_and_nothing_is_written(world, integration, key_file):
    """GIVEN data keys wrapped by the key file WHEN the file is gone THEN reading and writing stop
    with an error naming the file, and no credential row is written."""
    owner = world.users["workspace_owner"]
    credential_create(actor=owner, integration=integration, name="a", value="first-secret-1")
    key_file.unlink()
    from governance.crypto import keyring

    keyring.forget_keys()
    with pytest.raises(KeyUnavailableError, match=r"key file .* is missing"):
        credential_create(actor=owner, integration=integration, name="b", value="second-secret-2")
    assert CredentialVersion.objects.using("secrets").count() == 1


def test_replaced_key_file_is_refused_not_misread(world, integration, key_file):
    owner = world.users["workspace_owner"]
    version = _version(
        credential_create(actor=owner, integration=integration, name="a", value="first-secret-1")
    )
    import json

    document = json.loads(key_file.read_text())
    for ref in document["keys"]:
        document["keys"][ref] = "A" * 43 + "="
    key_file.write_text(json.dumps(document))
    from governance.crypto import keyring

    keyring.forget_keys()
    with pytest.raises(KeyUnavailableError, match="does not unwrap"):
        _ = CredentialVersion.objects.using("secrets").get(pk=version.pk).value


def test_world_readable_key_file_is_refused_at_start_up(world, integration, key_file):
    from governance.crypto.checks import key_provider_check

    credential_create(actor=world.users["workspace_owner"], integration=integration, name="a", value="x" * 12)
    assert key_provider_check() == []
    key_file.chmod(0o644)
    errors = key_provider_check()
    assert [error.id for error in errors] == ["crypto.E002"]
    assert "chmod 600" in errors[0].msg


def test_the_router_keeps_the_store_and_the_main_database_apart():
    from governance.core.dbrouters import SecretsRouter

    router = SecretsRouter()
    assert router.allow_migrate("secrets", "workflows", "credentialversion") is True
    assert router.allow_migrate("default", "workflows", "credentialversion") is False
    assert router.allow_migrate("secrets", "workflows", "workflow") is False
    assert router.allow_migrate("secrets", "tenancy") is False  # data migrations stay off the store
    assert router.allow_migrate("default", "tenancy") is True


def test_a_ciphertext_moved_to_another_workspaces_row_is_refused(world, integration):
    """Even with its own row id (the associated data matches), a value whose data key belongs to
    another workspace is refused: the row's workspace must own the key."""
    version = _version(credential_create(actor=world.users["workspace_owner"], integration=integration,
                                         name="k", value="owned-by-ops-eu"))  # fmt: skip
    with connections["secrets"].cursor() as cursor:
        cursor.execute("UPDATE workflows_credentialversion SET workspace_id = %s WHERE id = %s",
                       [world.sibling.pk, version.pk])  # fmt: skip
    with pytest.raises(DecryptionError, match="another workspace"):
        _ = CredentialVersion.objects.using("secrets").get(pk=version.pk).value
