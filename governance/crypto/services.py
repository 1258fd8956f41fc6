"""Changing the key hierarchy: KEK rotation, customer-managed keys, data key rotation and
crypto-shredding. Each is a ledger event in the transaction that makes the change.

* Rotating a KEK rewraps every data key under it, in one transaction: no value is re-encrypted,
  so it is quick (figures in docs/benchmarks.md) and readers never notice.
* Rotating a data key makes a new active version at once (new values use it) and starts a
  resumable job that re-encrypts the values under the previous version, which keeps decrypting
  until the job has moved every value; then it is retired and, after a short grace for reads
  already under way (``CRYPTO_RETIRED_KEY_GRACE_SECONDS``), opens nothing any more.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, router, transaction
from django.utils import timezone

from audit.models import Outcome
from audit.services import audit_event_record, audited_transaction, rows_where
from governance.access.decision import require
from governance.crypto import envelope, keyring
from governance.crypto.errors import DecryptionError
from governance.crypto.events import CryptoEvent
from governance.crypto.models import (
    DataKey,
    DataKeyStatus,
    KeyEncryptionKey,
    KeyOrigin,
    KeyStatus,
    Provider,
    RotationJob,
    RotationStatus,
)
from governance.crypto.providers import KEY_BYTES, key_check_value, provider_named
from governance.crypto.selectors import ciphertext_prefix, encrypted_fields_for, values_under
from governance.tenancy.models import Workspace

REWRAP_BATCH = 2_000


# --- key-encryption keys -----------------------------------------------------------------------


def kek_rotate(*, actor, workspace=None, provider: str | None = None) -> KeyEncryptionKey:
    """Replace the platform's KEK (or a workspace's own) with a new one and rewrap its data keys.

    ``actor`` None is the operator at the command line (``manage.py crypto_rotate_kek``)."""
    if actor is not None:
        require(actor, "key.manage", workspace)
    workspace_id = workspace.pk if workspace is not None else None
    with audited_transaction():
        if workspace is not None:
            Workspace.objects.select_for_update().get(pk=workspace.pk)
        old = (
            KeyEncryptionKey.objects.select_for_update()
            .filter(workspace_id=workspace_id, status=KeyStatus.ACTIVE)
            .first()
        )
        if old is None and workspace is not None:
            raise ValidationError(f"The workspace {workspace.slug} has no key of its own to rotate.")
        chosen = provider or (old.provider if old else settings.CRYPTO_KEY_PROVIDER)
        if old is not None:
            _retire(old)
        new = keyring.kek_create(
            workspace_id=workspace_id, provider=chosen, token_label=old.token_label if old else ""
        )
        rewrapped = rewrap_data_keys(DataKey.objects.filter(kek=old), new) if old else 0
        audit_event_record(
            action=CryptoEvent.KEY_ROTATED,
            actor=actor,
            target=new,
            # The retired key, and the data keys rewrapped under the new one.
            covers=[old, rows_where(DataKey, "kek", new.pk)],
            workspace_id=workspace_id,
            organization_id=workspace.organization_id if workspace else None,
            data={
                "provider": chosen,
                "from_version": old.version if old else None,
                "to_version": new.version,
                "data_keys_rewrapped": rewrapped,
            },
        )
        transaction.on_commit(keyring.forget_keys)
    return new


def workspace_key_configure(
    *, actor, workspace, provider: str, key_label: str = "", token_label: str = "", material_b64: str = ""
) -> KeyEncryptionKey:
    """Bring your own key: the workspace's data keys are rewrapped under a KEK the customer controls —
    an existing key on the HSM named by ``key_label``, or imported ``material_b64`` (32 bytes, base64),
    which goes into the provider and never into the database or the ledger."""
    require(actor, "key.manage", workspace)
    if provider not in Provider.values:
        raise ValidationError({"provider": f"Choose one of: {', '.join(Provider.values)}."})
    if bool(key_label) == bool(material_b64):
        raise ValidationError("Name an existing HSM key or import key material — one of the two.")
    if key_label and provider != Provider.PKCS11:
        raise ValidationError(
            {"key_label": "Only an HSM (PKCS#11) key can be named; import material instead."}
        )
    material = _decode_material(material_b64) if material_b64 else b""
    with audited_transaction():
        # Serialised with data_key_new: no data key of the workspace escapes the rewrap below.
        Workspace.objects.select_for_update().get(pk=workspace.pk)
        old = (
            KeyEncryptionKey.objects.select_for_update()
            .filter(workspace=workspace, status=KeyStatus.ACTIVE)
            .first()
        )
        version = (old.version + 1) if old else _next_version(workspace.pk)
        backend = provider_named(provider, token_label=token_label)
        if material:
            key_ref = keyring.new_key_ref(workspace.pk, version)
            backend.import_key(key_ref, material)
            origin, check_value = KeyOrigin.IMPORTED, key_check_value(material)
        else:
            if not backend.has_key(key_label):
                raise ValidationError({"key_label": f"The HSM holds no AES key labelled {key_label!r}."})
            key_ref, origin, check_value = key_label, KeyOrigin.EXTERNAL, ""
        if old is not None:
            _retire(old)
        new = KeyEncryptionKey.objects.create(
            workspace=workspace,
            provider=provider,
            token_label=token_label,
            key_ref=key_ref,
            origin=origin,
            check_value=check_value,
            version=version,
        )
        previous = DataKey.objects.filter(workspace=workspace).exclude(status=DataKeyStatus.DESTROYED)
        rewrapped = rewrap_data_keys(previous, new)
        audit_event_record(
            action=CryptoEvent.KEY_BYOK_CONFIGURED,
            actor=actor,
            target=new,
            covers=[old, rows_where(DataKey, "kek", new.pk)],
            workspace_id=workspace.pk,
            organization_id=workspace.organization_id,
            data={
                "provider": provider,
                "origin": origin,
                "version": version,
                "key_ref": key_ref,
                "check_value": check_value,
                "data_keys_rewrapped": rewrapped,
            },
        )
        transaction.on_commit(keyring.forget_keys)
    return new


def _decode_material(material_b64: str) -> bytes:
    try:
        material = base64.b64decode(material_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError({"material_b64": "The key material is not valid base64."}) from None
    if len(material) != KEY_BYTES:
        raise ValidationError(
            {"material_b64": f"An AES-256 key is {KEY_BYTES} bytes; this is {len(material)}."}
        )
    return material


def _next_version(workspace_id: int | None) -> int:
    latest = KeyEncryptionKey.objects.filter(workspace_id=workspace_id).order_by("-version").first()
    return latest.version + 1 if latest else 1


def _retire(kek: KeyEncryptionKey) -> None:
    kek.status = KeyStatus.RETIRED
    kek.retired_at = timezone.now()
    kek.save(update_fields=["status", "retired_at"])


def rewrap_data_keys(data_keys, new_kek: KeyEncryptionKey) -> int:
    """Unwrap each data key with its current KEK and wrap it with ``new_kek``, in batches, in the
    caller's transaction. The data keys themselves (and so every ciphertext) stay the same."""
    target = keyring.provider_of(new_kek).wrapper(new_kek.key_ref)
    sources: dict[int, object] = {}
    columns = ("pk", "kek_id", "wrapped", "workspace_id", "purpose", "subject", "version")
    rows = data_keys.exclude(status=DataKeyStatus.DESTROYED).order_by("pk").values_list(*columns)
    total, last = 0, 0
    while True:
        batch = list(rows.filter(pk__gt=last)[:REWRAP_BATCH])
        if not batch:
            return total
        updates = []
        for pk, kek_id, wrapped, workspace_id, purpose, subject, version in batch:
            source = sources.get(kek_id)
            if source is None:
                kek = KeyEncryptionKey.objects.get(pk=kek_id)
                source = sources[kek_id] = keyring.provider_of(kek).wrapper(kek.key_ref)
            binding = DataKey.binding_of(workspace_id, purpose, subject, version)
            updates.append((pk, target.wrap(source.unwrap(bytes(wrapped), binding), binding)))
        _write_wrapped(updates, new_kek.pk)
        total += len(updates)
        last = batch[-1][0]


def _write_wrapped(updates: list[tuple[int, bytes]], kek_id: int) -> None:
    connection = connections[router.db_for_write(DataKey)]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE crypto_datakey AS d SET wrapped = u.wrapped, kek_id = %s "
                "FROM unnest(%s::bigint[], %s::bytea[]) AS u(id, wrapped) WHERE d.id = u.id",
                [kek_id, [pk for pk, _ in updates], [wrapped for _, wrapped in updates]],
            )
        else:
            cursor.executemany(
                "UPDATE crypto_datakey SET wrapped = %s, kek_id = %s WHERE id = %s",
                [(wrapped, kek_id, pk) for pk, wrapped in updates],
            )


# --- data keys ---------------------------------------------------------------------------------


def data_key_rotate(*, actor, workspace, purpose: str) -> RotationJob:
    """Make a new active data key for the workspace and purpose and start re-encrypting the values
    under the previous one (the job runs in the background and can be resumed)."""
    from governance.crypto.tasks import rotation_job_run  # at call time: the task module imports this one

    if actor is not None:
        require(actor, "key.manage", workspace)
    with audited_transaction():
        current = (
            DataKey.objects.select_for_update()
            .filter(workspace=workspace, purpose=purpose, subject="", status=DataKeyStatus.ACTIVE)
            .first()
        )
        if current is None:
            raise ValidationError(f"The workspace has no {purpose} data key yet: nothing to rotate.")
        running = RotationJob.objects.filter(
            from_key__workspace=workspace, from_key__purpose=purpose, status=RotationStatus.RUNNING
        ).first()
        if running is not None:
            raise ValidationError(
                f"A rotation of this key is already running (started {running.started_at:%Y-%m-%d %H:%M})."
            )
        current.status = DataKeyStatus.RETIRING
        current.save(update_fields=["status"])
        new = keyring.data_key_new(
            workspace_id=workspace.pk, purpose=purpose, subject="", version=current.version + 1
        )
        job = RotationJob.objects.create(
            from_key=current, to_key=new, started_by=actor, total=values_under(current)
        )
        audit_event_record(
            action=CryptoEvent.DATA_KEY_ROTATION_STARTED,
            actor=actor,
            target=job,
            covers=[current, new],  # the retiring key and its successor, written with the job
            workspace_id=workspace.pk,
            organization_id=workspace.organization_id,
            data={
                "purpose": purpose,
                "from_version": current.version,
                "to_version": new.version,
                "values": job.total,
            },
        )
        transaction.on_commit(keyring.forget_keys)
        transaction.on_commit(lambda: rotation_job_run.delay(job.pk))
    return job


def rotation_job_advance(
    *, job_id: int, batch_size: int = 2_000, max_batches: int | None = None
) -> RotationJob:
    """Re-encrypt the next values of a running job, a batch per transaction, recording progress
    so that a crashed or restarted worker resumes where it stopped. Returns the job as it stands."""
    job = RotationJob.objects.select_related("from_key", "to_key").get(pk=job_id)
    if job.status != RotationStatus.RUNNING:
        return job
    if "settle_from" not in job.cursor:
        # The settle time counts from the first run, which comes after the rotation committed:
        # from then on no process picks the old key as active once its cache entry expires.
        with audited_transaction():
            RotationJob.objects.filter(pk=job.pk).update(cursor=job.cursor | {"settle_from": time.time()})
        job.refresh_from_db()
    old_aead = keyring.aead_for(job.from_key_id)
    new_key = keyring.ActiveKey(job.to_key_id, keyring.aead_for(job.to_key_id))
    batches = 0
    for model, field in encrypted_fields_for(job.from_key.purpose):
        label = model._meta.label_lower
        while max_batches is None or batches < max_batches:
            moved, failures, last = _reencrypt_batch(job, model, field, old_aead, new_key, batch_size)
            if last is None:
                break
            batches += 1
            with audited_transaction():
                cursor = job.cursor | {label: last, "failed": job.cursor.get("failed", []) + failures}
                RotationJob.objects.filter(pk=job.pk).update(
                    done=job.done + moved, failed=job.failed + len(failures), cursor=cursor
                )
            job.refresh_from_db()
    if max_batches is not None and batches >= max_batches:
        return job
    return _finish_if_settled(job)


def _reencrypt_batch(job, model, field, old_aead, new_key, batch_size):
    """One batch: read values still under the old key past the cursor, re-encrypt, and write each
    back only if it is unchanged since it was read (a concurrent writer's value is left alone)."""
    connection = connections[router.db_for_write(model)]
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(field.column)
    pk_column = connection.ops.quote_name(model._meta.pk.column)
    label = model._meta.label_lower
    cursor_value = job.cursor.get(label)
    skipped = set(job.cursor.get("failed", []))
    prefix = ciphertext_prefix(job.from_key_id)
    # Walk the primary key and pick the old key's values here: a filter on the header in SQL has
    # no index and no statistics, and turns every batch into a scan of the whole table.
    where, params = f"{column} IS NOT NULL", []
    if cursor_value is not None:
        where += f" AND {pk_column} > %s"
        params.append(cursor_value)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {pk_column}, {column} FROM {table} WHERE {where} ORDER BY {pk_column} LIMIT %s",  # noqa: S608
            [*params, batch_size],
        )
        rows = cursor.fetchall()
    if not rows:
        return 0, [], None
    updates, failures = [], []
    for raw_pk, blob in rows:
        blob = bytes(blob)
        if blob[:9] != prefix or str(raw_pk) in skipped:
            continue
        # The associated data names the key as the model has it (a UUID with dashes), whatever the
        # database returns (SQLite stores it as 32 hex digits); SQL gets the raw value back.
        pk = raw_pk
        context = envelope.context_of(model._meta.db_table, field.column, model._meta.pk.to_python(raw_pk))
        try:
            plaintext = envelope.open_sealed(old_aead, blob, context)
        except DecryptionError:
            failures.append(str(raw_pk))
            continue
        updates.append((pk, envelope.seal(new_key.aead, new_key.key_id, plaintext, context), blob))
    moved = _write_reencrypted(connection, table, column, pk_column, updates)
    if failures:
        _record_failures(job, model, field, failures)
    last = rows[-1][0]
    return moved, failures, last if isinstance(last, int) else str(last)


def _write_reencrypted(connection, table, column, pk_column, updates) -> int:
    if not updates:
        return 0
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            pk_type = "uuid" if not isinstance(updates[0][0], int) else "bigint"
            cursor.execute(
                f"UPDATE {table} AS t SET {column} = u.new FROM unnest(%s::{pk_type}[], %s::bytea[], %s::bytea[]) "  # noqa: S608
                f"AS u(pk, new, old) WHERE t.{pk_column} = u.pk AND t.{column} = u.old",
                [
                    [str(pk) if pk_type == "uuid" else pk for pk, _, _ in updates],
                    [new for _, new, _ in updates],
                    [old for _, _, old in updates],
                ],
            )
            return cursor.rowcount
        moved = 0
        for pk, new, old in updates:
            cursor.execute(
                f"UPDATE {table} SET {column} = %s WHERE {pk_column} = %s AND {column} = %s",  # noqa: S608
                [new, pk, old],
            )
            moved += cursor.rowcount
        return moved


def _record_failures(job: RotationJob, model, field, failures: list[str]) -> None:
    with audited_transaction():
        audit_event_record(
            action=CryptoEvent.CRYPTO_DECRYPT_FAILED,
            actor=None,
            target=job,
            workspace_id=job.from_key.workspace_id,
            outcome=Outcome.FAILED,
            data={
                "table": model._meta.db_table,
                "column": field.column,
                "rows": failures[:50],
                "count": len(failures),
                "during": "data key rotation",
            },
        )


def _finish_if_settled(job: RotationJob) -> RotationJob:
    """Retire the old key once no value uses it. Other processes may have cached the old key as
    active for up to CRYPTO_KEY_CACHE_SECONDS after the rotation started: wait that long, then
    sweep again from the start before retiring."""
    settle = float(settings.CRYPTO_ROTATION_SETTLE_SECONDS)
    settle_from = job.cursor.get("settle_from")
    if settle > 0 and (settle_from is None or time.time() - settle_from < settle):
        return job
    remaining = values_under(job.from_key) - len(job.cursor.get("failed", []))
    if remaining > 0:
        with audited_transaction():
            kept = {"failed": job.cursor.get("failed", []), "settle_from": settle_from}
            RotationJob.objects.filter(pk=job.pk).update(cursor=kept, total=job.total + remaining)
        job.refresh_from_db()
        return rotation_job_advance(job_id=job.pk)
    with audited_transaction():
        job = RotationJob.objects.select_for_update().select_related("from_key", "to_key").get(pk=job.pk)
        if job.status != RotationStatus.RUNNING:
            return job
        failed = job.cursor.get("failed", [])
        job.finished_at = timezone.now()
        if failed:
            job.status = RotationStatus.FAILED
            job.message = (
                f"{len(failed)} value(s) did not decrypt and were left under v{job.from_key.version}, "
                "which stays readable; see the crypto.decrypt_failed events."
            )
        else:
            job.status = RotationStatus.COMPLETED
            job.from_key.status = DataKeyStatus.RETIRED
            job.from_key.retired_at = job.finished_at
            job.from_key.save(update_fields=["status", "retired_at"])
        job.save(update_fields=["status", "finished_at", "message"])
        audit_event_record(
            action=CryptoEvent.DATA_KEY_ROTATION_COMPLETED,
            actor=None,
            target=job,
            covers=[job.from_key],  # retired with the job when it completes
            workspace_id=job.from_key.workspace_id,
            outcome=Outcome.FAILED if failed else Outcome.SUCCESS,
            data={
                "purpose": job.from_key.purpose,
                "from_version": job.from_key.version,
                "to_version": job.to_key.version,
                "values": job.done,
                "failed": len(failed),
            },
        )
        transaction.on_commit(keyring.forget_keys)
    return job


def data_key_destroy(*, actor, workspace, subject: str) -> int:
    """Crypto-shredding: destroy the data keys of one data subject; everything encrypted under them
    becomes unreadable for good. Returns how many keys were destroyed."""
    if actor is not None:
        require(actor, "key.manage", workspace)
    with audited_transaction():
        keys = list(
            DataKey.objects.select_for_update()
            .filter(workspace=workspace, purpose="subject", subject=subject)
            .exclude(status=DataKeyStatus.DESTROYED)
        )
        now = timezone.now()
        for data_key in keys:
            data_key.status, data_key.wrapped, data_key.destroyed_at = DataKeyStatus.DESTROYED, b"", now
            data_key.save(update_fields=["status", "wrapped", "destroyed_at"])
        audit_event_record(
            action=CryptoEvent.DATA_KEY_DESTROYED,
            actor=actor,
            covers=keys,
            workspace_id=workspace.pk,
            organization_id=workspace.organization_id,
            data={"subject_digest": _digest(subject), "keys": [k.pk for k in keys]},
        )
        transaction.on_commit(keyring.forget_keys)
    return len(keys)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
