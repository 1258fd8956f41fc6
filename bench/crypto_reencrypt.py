"""Data key rotation: re-encrypting 1,000,000 credential values while two reader threads
decrypt random values through the ORM, against rewriting the same rows' bytes in plain SQL in the
same run. Targets: ≤ 5 min for 1,000,000 values; 0 decrypt errors for the readers.

Setup (not measured): ``--values`` credential versions (4 per credential) in the secrets store
database, each value sealed in Python with ``envelope.seal`` under the workspace's *credentials*
data key and bound to its row, inserted with COPY; a twin table with the same columns and indexes
and the same rows, for the baseline. Each value's plaintext is derived from its row id, so readers
check what they decrypt.

* baseline: ``UPDATE <twin> SET value = value`` (every row rewritten, every index entry added, in
  one statement), and ``COPY (SELECT id, value ...) TO STDOUT`` (reading the same bytes out);
* ours: ``data_key_rotate(actor=None, ...)`` (new key v2, job created, values counted), then
  ``rotation_job_advance`` called synchronously until the job completes (batches of 2,000, each in
  its own transaction, then the final sweep and retirement of v1) — the Celery task is not queued;
* meanwhile 2 reader threads loop: ``CredentialVersion.objects.using("secrets").get(pk=random id)``
  then ``version.value``, compared with the expected plaintext; reads and errors are counted.

The key ring cache is 60 s as in production (``--key-cache-seconds``), the settle time 0 (one
process: nothing else caches keys). Memory is bounded: rows are generated, and re-encrypted, in
batches; readers pick from a sample of ``--sample`` ids.

    .venv/bin/python bench/crypto_reencrypt.py [--values 1000000] [--readers 2]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.crypto_fields import add_crypto_database_arguments, secrets_raw_connection, setup_crypto

TARGET_SECONDS = 300.0
VERSIONS_PER_CREDENTIAL = 4
CHUNK = 20_000
TABLE = "workflows_credentialversion"
TWIN = "bench_twin_credentialversion"
VERSION_COLUMNS = (
    "id", "credential_id", "workspace_id", "number", "value", "fingerprint", "status", "created_at",
    "test_message", "grace_until", "promoted_at",
)  # fmt: skip
CREDENTIAL_COLUMNS = ("id", "workspace_id", "integration_id", "name", "rotation_required", "created_at")


def plaintext_of(version_id: uuid.UUID) -> bytes:
    """The value stored for row ``version_id`` (readers recompute it to check what they read)."""
    return f"sk_live_{version_id.hex}_bench".encode()


def secrets_execute(*statements: str) -> None:
    from django.db import connections

    with connections["secrets"].cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def settle_secrets(*tables: str) -> None:
    secrets_execute(*(f"VACUUM ANALYZE {table}" for table in tables), "CHECKPOINT")


def insert_values(workspace, count: int, sample_size: int) -> list[uuid.UUID]:
    """COPY ``count`` credential versions (and their credentials) sealed under the workspace's
    credentials key; returns a random sample of the version ids. Capture and foreign-key triggers
    are off for the load (setup only; the rows are consistent by construction)."""
    from governance.crypto import envelope, keyring

    key = keyring.active_key(workspace.pk, "credentials")
    now = datetime.now(UTC)
    rng = random.Random(7)
    sample: list[uuid.UUID] = []
    connection = secrets_raw_connection()
    credentials = (count + VERSIONS_PER_CREDENTIAL - 1) // VERSIONS_PER_CREDENTIAL
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        made = 0
        for start in range(0, credentials, CHUNK // VERSIONS_PER_CREDENTIAL):
            stop = min(start + CHUNK // VERSIONS_PER_CREDENTIAL, credentials)
            credential_rows, version_rows = [], []
            for index in range(start, stop):
                credential_id = uuid.uuid4()
                credential_rows.append(
                    (credential_id, workspace.pk, 1 + index % 100, f"cred-{index:07d}", False, now)
                )
                for number in range(1, VERSIONS_PER_CREDENTIAL + 1):
                    if made == count:
                        break
                    made += 1
                    version_id = uuid.uuid4()
                    context = envelope.context_of(TABLE, "value", version_id)
                    blob = envelope.seal(key.aead, key.key_id, plaintext_of(version_id), context)
                    active = number == VERSIONS_PER_CREDENTIAL
                    version_rows.append((
                        version_id, credential_id, workspace.pk, number, blob, f"fp:{version_id.hex[:16]}",
                        "active" if active else "grace", now, "", None if active else now, now,
                    ))  # fmt: skip
                    # Reservoir sampling keeps a uniform sample in bounded memory.
                    if len(sample) < sample_size:
                        sample.append(version_id)
                    elif (slot := rng.randrange(made)) < sample_size:
                        sample[slot] = version_id
            with cursor.copy(
                f"COPY workflows_credential ({', '.join(CREDENTIAL_COLUMNS)}) FROM STDIN"
            ) as copy:
                for row in credential_rows:
                    copy.write_row(row)
            with cursor.copy(f"COPY {TABLE} ({', '.join(VERSION_COLUMNS)}) FROM STDIN") as copy:
                for row in version_rows:
                    copy.write_row(row)
    return sample


def make_twin() -> None:
    secrets_execute(
        f"DROP TABLE IF EXISTS {TWIN}",
        f"CREATE TABLE {TWIN} (LIKE {TABLE} INCLUDING ALL)",
        f"INSERT INTO {TWIN} SELECT * FROM {TABLE}",
    )


def baseline(count: int) -> tuple[float, float]:
    """Seconds to rewrite every value of the twin in one UPDATE, and to COPY the ids and values out."""
    from django.db import connections

    settle_secrets(TWIN)
    started = time.perf_counter()
    secrets_execute(f"UPDATE {TWIN} SET value = value")
    update = time.perf_counter() - started
    connection = secrets_raw_connection()
    started = time.perf_counter()
    rows = 0
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY (SELECT id, value FROM {TABLE}) TO STDOUT") as copy,
    ):
        for block in copy:
            rows += bytes(block).count(b"\n")
    connection.commit()
    copy_out = time.perf_counter() - started
    connections["secrets"].close()
    if rows != count:
        raise SystemExit(f"COPY read {rows:,} rows, expected {count:,}")
    return update, copy_out


def crypto_floor(count: int) -> float:
    """Seconds for ``count`` raw AES-GCM decrypt + encrypt of 60-byte values (no database, no Python
    around them but the loop), measured on min(count, 100,000) values and scaled."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    measured = min(count, 100_000)
    old, new = AESGCM(os.urandom(32)), AESGCM(os.urandom(32))
    nonces = [os.urandom(12) for _ in range(measured)]
    blobs = [old.encrypt(nonce, b"x" * 45, b"y" * 70) for nonce in nonces]
    started = time.perf_counter()
    for nonce, blob in zip(nonces, blobs, strict=True):
        new.encrypt(os.urandom(12), old.decrypt(nonce, blob, b"y" * 70), b"y" * 70)
    return (time.perf_counter() - started) * count / measured


class Readers:
    """Threads reading random rows through the ORM and decrypting them, counting reads and errors."""

    def __init__(self, ids: list[uuid.UUID], threads: int) -> None:
        self.ids = ids
        self.stop = threading.Event()
        self.reads = [0] * threads
        self.errors = [0] * threads
        self.messages: list[str] = []
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True) for n in range(threads)]

    def run(self, number: int) -> None:
        from django.db import connections

        from workflows.credentials.models import CredentialVersion

        rng = random.Random(number)
        rows = CredentialVersion.objects.using("secrets")
        try:
            while not self.stop.is_set():
                version_id = rng.choice(self.ids)
                try:
                    value = rows.get(pk=version_id).value
                    if value.encode() != plaintext_of(version_id):
                        raise ValueError(f"row {version_id} decrypted to another value")
                except Exception as error:
                    self.errors[number] += 1
                    if len(self.messages) < 5:
                        self.messages.append(f"{type(error).__name__}: {error}")
                self.reads[number] += 1
        finally:
            connections.close_all()

    def __enter__(self) -> Readers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def rotate(workspace, count: int, progress_every: float) -> tuple[object, dict[str, float]]:
    """Start the rotation and advance it synchronously to the end; return the job and phase times."""
    from governance.crypto.models import RotationStatus
    from governance.crypto.services import data_key_rotate, rotation_job_advance

    phases: dict[str, float] = {}
    started = time.perf_counter()
    with mock.patch("governance.crypto.tasks.rotation_job_run.delay"):  # we advance it ourselves
        job = data_key_rotate(actor=None, workspace=workspace, purpose="credentials")
    phases["data_key_rotate (new key, job, count)"] = time.perf_counter() - started
    moving = time.perf_counter()
    shown = moving
    while job.status == RotationStatus.RUNNING:
        job = rotation_job_advance(job_id=job.pk, max_batches=25)
        now = time.perf_counter()
        if now - shown >= progress_every:
            shown = now
            print(f"    … {job.done:,} / {job.total:,} re-encrypted after {now - started:.0f} s", flush=True)
    phases["rotation_job_advance until completed"] = time.perf_counter() - moving
    phases["total"] = time.perf_counter() - started
    return job, phases


def check_after(job, sample: list[uuid.UUID], count: int) -> bool:
    from django.db import connections

    from governance.crypto import keyring
    from governance.crypto.models import DataKey
    from governance.crypto.selectors import values_under
    from workflows.credentials.models import CredentialVersion

    old, new = DataKey.objects.get(pk=job.from_key_id), DataKey.objects.get(pk=job.to_key_id)
    left, moved = values_under(old), values_under(new)
    keyring.forget_keys()
    picked = sample[:1000]
    read = {v.pk: v.value for v in CredentialVersion.objects.using("secrets").filter(pk__in=picked)}
    good = sum(read.get(pk, "").encode() == plaintext_of(pk) for pk in picked)
    with connections["secrets"].cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE}")
        rows = cursor.fetchone()[0]
    checks = [
        ("job status", f"{job.status}: done {job.done:,} of {job.total:,}, failed {job.failed}",
         "completed", job.status == "completed" and job.done == count and job.failed == 0),
        ("values still under v1 / now under v2", f"{left:,} / {moved:,}", f"0 / {count:,}",
         left == 0 and moved == count == rows),
        ("old key status", old.status, "retired", old.status == "retired"),
        ("sample decrypted after (fresh key ring)", f"{good:,} of {len(picked):,}", "all", good == len(picked)),
    ]  # fmt: skip
    for label, value, target, ok in checks:
        common.show(f"  check: {label}", value, target, ok)
    return all(ok for *_, ok in checks)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--values", type=int, default=1_000_000, help="credential values (default 1000000)")
    parser.add_argument("--readers", type=int, default=2, help="concurrent reader threads (default 2)")
    parser.add_argument("--sample", type=int, default=100_000, help="row ids the readers pick from")
    parser.add_argument(
        "--key-cache-seconds", type=int, default=60, help="CRYPTO_KEY_CACHE_SECONDS (default 60)"
    )
    parser.add_argument("--progress", type=float, default=30.0, help="seconds between progress lines")
    add_crypto_database_arguments(parser)
    options = common.parse_arguments(parser, smoke={"values": 500, "sample": 100, "progress": 60.0})

    workspace = setup_crypto(options, key_cache_seconds=options.key_cache_seconds, settle_seconds=0)
    print(
        f"crypto_reencrypt: {options.values:,} values, {options.readers} reader threads, key cache "
        f"{options.key_cache_seconds} s, databases {options.database} + {options.secrets_database}"
    )
    common.title("Setup (not measured)")
    started = time.perf_counter()
    sample = insert_values(workspace, options.values, options.sample)
    common.show("seal in Python + COPY", common.rate(options.values, time.perf_counter() - started))
    started = time.perf_counter()
    make_twin()
    common.show("twin table for the baseline", f"{time.perf_counter() - started:.1f} s")

    common.title("Baseline: the same rows' bytes in plain SQL")
    update, copy_out = baseline(options.values)
    common.show(f"UPDATE {TWIN} SET value = value", common.rate(options.values, update))
    common.show("COPY (SELECT id, value) TO STDOUT", common.rate(options.values, copy_out))
    floor = crypto_floor(options.values)
    common.show("raw AES-GCM decrypt+encrypt, no database", common.rate(options.values, floor))
    secrets_execute(f"DROP TABLE {TWIN}")

    common.title(f"Data key rotation of {options.values:,} values with {options.readers} readers")
    settle_secrets(TABLE)
    with Readers(sample, options.readers) as readers:
        time.sleep(1.0)  # readers up and running before the rotation starts
        reads_before = sum(readers.reads)
        job, phases = rotate(workspace, options.values, options.progress)
        reads_during = sum(readers.reads) - reads_before
    total = phases["total"]
    for label, seconds in phases.items():
        if label != "total":
            common.show(f"  {label}", f"{seconds:.1f} s")
    common.show(
        "ours: rotation, start to completed",
        common.rate(options.values, total),
        f"<= {TARGET_SECONDS:.0f} s",
        total <= TARGET_SECONDS,
    )
    common.show("ratio rotation / UPDATE SET value = value", f"{total / update:.1f}×")
    common.show("ratio rotation / COPY out", f"{total / copy_out:.1f}×")
    common.show("share of raw AES-GCM in the rotation", f"{floor / total:.1%}")
    errors = sum(readers.errors)
    common.show(
        "reader reads during the rotation",
        f"{reads_during:,} ({reads_during / total:,.0f}/s, {options.readers} threads)",
    )
    common.show("reader decrypt errors", f"{errors:,}", "= 0", errors == 0)
    for message in readers.messages:
        print(f"    {message}")
    ok = check_after(job, sample, options.values)
    common.show("rotation left every value readable under v2", "yes" if ok else "NO", "", ok)


if __name__ == "__main__":
    main()
