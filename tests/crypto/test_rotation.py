"""Rotations: a KEK rotation rewraps data keys; a data key rotation re-encrypts values, resumable,
while readers go on; crypto-shredding makes a subject's data unreadable."""

from __future__ import annotations

import base64
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections

from audit.models import AuditEvent
from governance.access.decision import AccessDenied
from governance.crypto import envelope, keyring
from governance.crypto.errors import DecryptionError, KeyDestroyedError
from governance.crypto.models import DataKey, KeyEncryptionKey, RotationJob
from governance.crypto.services import (
    data_key_destroy,
    data_key_rotate,
    kek_rotate,
    rotation_job_advance,
    workspace_key_configure,
)
from workflows.credentials.models import CredentialVersion
from workflows.credentials.services import credential_create

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])


def _credentials(world, integration, count: int) -> dict[str, str]:
    owner = world.users["workspace_owner"]
    values = {f"key-{i}": f"secret-value-{i:04d}-xyz" for i in range(count)}
    for name, value in values.items():
        credential_create(actor=owner, integration=integration, name=name, value=value)
    return values


def _read_all() -> dict[str, str]:
    keyring.forget_keys()
    return {
        v.credential.name: v.value
        for v in CredentialVersion.objects.using("secrets").select_related("credential")
    }


def _key_ids() -> set[int]:
    with connections["secrets"].cursor() as cursor:
        cursor.execute("SELECT value FROM workflows_credentialversion")
        return {envelope.header_of(bytes(row[0])).key_id for row in cursor.fetchall()}


def test_kek_rotation_rewraps_every_data_key_and_values_still_read(world, integration):
    values = _credentials(world, integration, 3)
    keyring.active_key(world.sibling.pk, "general")
    before = {dk.pk: bytes(dk.wrapped) for dk in DataKey.objects.all()}
    old = KeyEncryptionKey.objects.get(status="active")
    new = kek_rotate(actor=None)
    assert new.version == old.version + 1
    old.refresh_from_db()
    assert old.status == "retired"
    after = {dk.pk: (bytes(dk.wrapped), dk.kek_id) for dk in DataKey.objects.all()}
    assert set(after) == set(before)
    assert all(after[pk][0] != before[pk] and after[pk][1] == new.pk for pk in before)
    assert _read_all() == values
    event = AuditEvent.objects.get(action="key.rotated")
    assert event.data["data_keys_rewrapped"] == len(before)


def test_data_key_rotation_reencrypts_and_retires_the_old_key(
    world, integration, django_capture_on_commit_callbacks
):
    values = _credentials(world, integration, 7)
    old = DataKey.objects.get(workspace=world.ws, purpose="credentials")
    with django_capture_on_commit_callbacks(execute=True):
        job = data_key_rotate(actor=world.users["workspace_owner"], workspace=world.ws, purpose="credentials")
    job.refresh_from_db()  # eager task: ran to the end
    assert (job.status, job.total, job.done, job.failed) == ("completed", 7, 7, 0)
    old.refresh_from_db()
    assert old.status == "retired"
    assert _key_ids() == {job.to_key_id}
    assert _read_all() == values
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"data_key.rotation_started", "data_key.rotation_completed"} <= actions


def test_rotation_is_resumable_batch_by_batch_and_reads_never_fail(world, integration, settings):
    """GIVEN a rotation interrupted after each batch WHEN readers read between batches THEN every
    value decrypts, the job's progress grows, and the next run resumes where the last stopped."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    values = _credentials(world, integration, 9)
    from unittest import mock

    with mock.patch("governance.crypto.tasks.rotation_job_run.delay"):  # the worker is "killed"
        job = data_key_rotate(actor=world.users["workspace_owner"], workspace=world.ws, purpose="credentials")
    progress = []
    while job.status == "running":
        job = rotation_job_advance(job_id=job.pk, batch_size=2, max_batches=1)
        progress.append(job.done)
        assert _read_all() == values  # readers during the rotation
        if job.done == job.total:
            job = rotation_job_advance(job_id=job.pk)
    assert progress[:5] == [2, 4, 6, 8, 9]
    assert job.status == "completed"
    assert len(_key_ids()) == 1


def test_values_written_under_the_old_key_during_the_rotation_are_moved_too(world, integration, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    values = _credentials(world, integration, 3)
    old = DataKey.objects.get(workspace=world.ws, purpose="credentials")
    from unittest import mock

    with mock.patch("governance.crypto.tasks.rotation_job_run.delay"):
        job = data_key_rotate(actor=world.users["workspace_owner"], workspace=world.ws, purpose="credentials")
    job = rotation_job_advance(job_id=job.pk, max_batches=1)
    # Another process still had the old key cached as active and wrote a value with it.
    late = CredentialVersion.objects.using("secrets").first()
    blob = envelope.seal(keyring.aead_for(old.pk), old.pk, b"written-late-123", envelope.context_of(
        "workflows_credentialversion", "value", late.pk))  # fmt: skip
    with connections["secrets"].cursor() as cursor:
        cursor.execute("UPDATE workflows_credentialversion SET value = %s WHERE id = %s", [blob, late.pk])
    job = rotation_job_advance(job_id=job.pk)
    assert job.status == "completed"
    assert _key_ids() == {job.to_key_id}
    values[late.credential.name] = "written-late-123"
    assert _read_all() == values


def test_two_rotations_of_one_key_at_once_are_refused(world, integration, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    _credentials(world, integration, 1)
    from unittest import mock

    with mock.patch("governance.crypto.tasks.rotation_job_run.delay"):
        data_key_rotate(actor=world.users["workspace_owner"], workspace=world.ws, purpose="credentials")
        with pytest.raises(ValidationError, match="already running"):
            data_key_rotate(actor=world.users["workspace_owner"], workspace=world.ws, purpose="credentials")


@pytest.mark.parametrize("role", ["workflow_builder", "viewer", "auditor", "compliance_officer"])
def test_only_key_managers_rotate(world, integration, role):
    _credentials(world, integration, 1)
    with pytest.raises(AccessDenied):
        data_key_rotate(actor=world.users[role], workspace=world.ws, purpose="credentials")
    assert not RotationJob.objects.exists()


def test_corrupted_value_fails_the_job_without_losing_anything(
    world, integration, django_capture_on_commit_callbacks
):
    values = _credentials(world, integration, 3)
    broken = CredentialVersion.objects.using("secrets").first()
    with connections["secrets"].cursor() as cursor:
        cursor.execute("UPDATE workflows_credentialversion SET value = overlay(value placing '\\xff'::bytea "
                       "from 30 for 1) WHERE id = %s", [broken.pk])  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        job = data_key_rotate(actor=world.users["workspace_owner"], workspace=world.ws, purpose="credentials")
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("failed", 2, 1)
    assert "did not decrypt" in job.message
    job.from_key.refresh_from_db()
    assert job.from_key.status == "retiring"  # still readable: nothing is lost
    del values[broken.credential.name]
    readable = {
        v.credential.name: v.value
        for v in CredentialVersion.objects.using("secrets").select_related("credential").exclude(pk=broken.pk)
    }
    assert readable == values
    assert AuditEvent.objects.filter(action="crypto.decrypt_failed").exists()


def test_byok_imported_key_rewraps_the_workspace_keys_and_never_records_the_material(world, integration):
    values = _credentials(world, integration, 2)
    material = bytes(range(32))
    encoded = base64.b64encode(material).decode()
    kek = workspace_key_configure(actor=world.users["workspace_owner"], workspace=world.ws, provider="local",
                                  material_b64=encoded)  # fmt: skip
    assert kek.origin == "imported"
    assert kek.workspace_id == world.ws.pk
    assert kek.check_value
    assert set(DataKey.objects.filter(workspace=world.ws).values_list("kek_id", flat=True)) == {kek.pk}
    assert _read_all() == values
    event = AuditEvent.objects.get(action="key.byok_configured")
    assert encoded not in event.canonical.decode()
    assert material.hex() not in event.canonical.decode()
    # New data keys of the workspace are wrapped by its own key; the sibling keeps the platform's.
    assert keyring.active_kek(world.ws.pk) == kek
    assert keyring.active_kek(world.sibling.pk).workspace_id is None


@pytest.mark.parametrize(
    ("material", "message"),
    [("not base64!", "not valid base64"), (base64.b64encode(b"short").decode(), "32 bytes")],
)
def test_byok_bad_material_is_a_field_error(world, material, message):
    with pytest.raises(ValidationError, match=message):
        workspace_key_configure(actor=world.users["workspace_owner"], workspace=world.ws, provider="local",
                                material_b64=material)  # fmt: skip


def test_byok_is_refused_to_other_workspaces_owner(world):
    with pytest.raises(AccessDenied):
        workspace_key_configure(actor=world.users["workspace_owner"], workspace=world.foreign, provider="local",
                                material_b64=base64.b64encode(bytes(32)).decode())  # fmt: skip


def test_crypto_shredding_makes_a_subjects_data_unreadable(world):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: F401

    key = keyring.active_key(world.ws.pk, "subject", "person-42")
    context = envelope.context_of("t", "c", 1)
    blob = envelope.seal(key.aead, key.key_id, b"personal data", context)
    assert envelope.open_sealed(keyring.aead_for(key.key_id), blob, context) == b"personal data"
    assert (
        data_key_destroy(actor=world.users["workspace_owner"], workspace=world.ws, subject="person-42") == 1
    )
    keyring.forget_keys()
    with pytest.raises(KeyDestroyedError):
        keyring.aead_for(key.key_id)
    assert bytes(DataKey.objects.get(pk=key.key_id).wrapped) == b""
    event = AuditEvent.objects.get(action="data_key.destroyed")
    assert "person-42" not in event.canonical.decode()


@pytest.mark.django_db(transaction=True, databases=["default", "secrets"])
def test_concurrent_readers_see_no_error_during_a_rotation(settings):
    """Readers in other threads decrypt continuously while a rotation moves every value."""
    from tests.conftest import build_world
    from workflows.integrations.models import Integration

    world = build_world()
    integration = Integration.objects.create(workspace=world.ws, name="CRM", slug="crm", kind="crm")
    values = _credentials(world, integration, 60)
    errors: list[Exception] = []
    reads = [0]
    stop = threading.Event()

    def reader():
        try:
            while not stop.is_set():
                for version in CredentialVersion.objects.using("secrets").select_related("credential"):
                    assert version.value == values[version.credential.name]
                    reads[0] += 1
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    job = data_key_rotate(actor=world.users["workspace_owner"], workspace=world.ws, purpose="credentials")
    stop.set()
    for thread in threads:
        thread.join()
    job.refresh_from_db()
    assert job.status == "completed"
    assert job.done == 60
    assert errors == []
    assert reads[0] > 0


def test_commands_rotate_and_check(world, integration, django_capture_on_commit_callbacks):
    from io import StringIO

    from django.core.management import CommandError, call_command

    _credentials(world, integration, 2)
    out = StringIO()
    call_command("crypto_check", stdout=out)
    assert "answers" in out.getvalue()
    call_command("crypto_rotate_kek", stdout=out)
    assert "platform KEK rotated: now v2" in out.getvalue()
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "crypto_rotate_data_key", "--workspace", world.ws.slug, "--purpose", "credentials", stdout=out
        )
    assert "v1 → v2" in out.getvalue()
    with pytest.raises(CommandError, match="no key of its own"):
        call_command("crypto_rotate_kek", "--workspace", world.ws.slug)
    with pytest.raises(CommandError, match="No workspace"):
        call_command("crypto_rotate_kek", "--workspace", "nope")


def test_after_the_rotation_the_retired_key_opens_nothing(
    world, integration, settings, django_capture_on_commit_callbacks
):
    """Retired versions stay readable until the job ends; then, past the short grace for reads
    under way, a value still under the old key (an outdated copy) is refused."""
    _credentials(world, integration, 2)
    old = DataKey.objects.get(workspace=world.ws, purpose="credentials")
    with django_capture_on_commit_callbacks(execute=True):
        data_key_rotate(actor=world.users["workspace_owner"], workspace=world.ws, purpose="credentials")
    old.refresh_from_db()
    assert old.status == "retired"
    version = CredentialVersion.objects.using("secrets").first()
    context = envelope.context_of("workflows_credentialversion", "value", version.pk)
    settings.CRYPTO_RETIRED_KEY_GRACE_SECONDS = 3600
    keyring.forget_keys()
    stale = envelope.seal(keyring.aead_for(old.pk), old.pk, b"outdated copy", context)  # within the grace
    settings.CRYPTO_RETIRED_KEY_GRACE_SECONDS = -1
    keyring.forget_keys()
    with pytest.raises(DecryptionError, match="retired"):
        envelope.open_sealed(keyring.aead_for(old.pk), stale, context)
