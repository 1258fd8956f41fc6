"""Cost of the encrypted field: values encrypted and decrypted per second through
``EncryptedTextField`` (and through ``envelope.seal`` / ``open_sealed`` with the key ring's key and
the row's context), each against raw ``AESGCM.encrypt`` / ``decrypt`` of the same payloads in the
same run.

Paths measured, per payload size, in alternating rounds (the median of the rounds is reported):

* raw: ``AESGCM.encrypt(nonce, payload, None)`` / ``decrypt`` with precomputed nonces (the cipher);
* envelope: ``envelope.seal(key.aead, key.key_id, payload, context_of(...))`` with the key ring's
  active key looked up per value (``active_key``, a cache hit), and ``open_sealed`` with
  ``aead_for(header.key_id)`` (a cache hit);
* field: ``EncryptedTextField.encrypt(instance, text)`` / ``.decrypt(instance, blob)`` on
  ``CredentialVersion`` instances (str→bytes, key lookup, context from the instance's pk);
* attribute: ``version.value`` on a freshly loaded instance (the lazy descriptor, what readers do).

The key ring caches unwrapped keys for ``CRYPTO_KEY_CACHE_SECONDS`` (60 s by default, 0 in the test
profile). The main figures use 60 s; one more line shows a decrypt with the cache off, where each
value costs a data key query and an unwrap by the key file provider.

    .venv/bin/python bench/crypto_fields.py [--values 20000] [--rounds 5]

The other crypto scripts import ``setup_crypto`` from here: two databases of their own
(``bench_crypto`` and ``bench_crypto_secrets``), a key file of their own in a temporary directory.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = "bench_crypto"
SECRETS_DB_NAME = "bench_crypto_secrets"
SIZES = (40, 1024)  # a typical API key / token, and a 1 KiB certificate or JSON blob


# --- shared setup of the crypto benchmarks ------------------------------------------------------


def add_crypto_database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database", default=DB_NAME, help=f"main benchmark database (default {DB_NAME}; created if missing)"
    )
    parser.add_argument(
        "--secrets-database",
        default=SECRETS_DB_NAME,
        help=f"secrets store benchmark database (default {SECRETS_DB_NAME}; created if missing)",
    )
    parser.add_argument("--fresh", action="store_true", help="drop and recreate both databases first")


def setup_crypto(options, *, key_cache_seconds: int = 60, settle_seconds: int = 0):
    """Both benchmark databases migrated, a fresh key file, empty key tables and ledger, and one
    organisation with one workspace. Returns the workspace.

    Must run before anything imports the key providers' settings (it sets the key file path)."""
    common.ensure_database(options.secrets_database, fresh=options.fresh)
    os.environ["SECRETS_DATABASE_URL"] = f"{common.SERVER_URL}/{options.secrets_database}"
    common.setup_django(options.database, fresh=options.fresh)
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", database="secrets", verbosity=0)

    key_dir = Path(tempfile.mkdtemp(prefix="bench-crypto-keys-"))
    atexit.register(shutil.rmtree, key_dir, ignore_errors=True)  # bench keys only: gone with the run
    settings.CRYPTO_LOCAL_KEY_FILE = str(key_dir / "kek.json")
    settings.CRYPTO_KEY_PROVIDER = "local"
    settings.CRYPTO_KEY_CACHE_SECONDS = key_cache_seconds
    settings.CRYPTO_ROTATION_SETTLE_SECONDS = settle_seconds

    from governance.crypto import keyring, providers

    providers.forget_providers()
    keyring.forget_keys()
    reset_crypto()
    return make_workspace()


def reset_crypto() -> None:
    """Empty the key tables, the secrets store tables, the workspaces and the ledger."""
    from django.db import connections

    common.execute(
        "TRUNCATE crypto_rotationjob, crypto_datakey, crypto_keyencryptionkey, "
        "tenancy_workspace, tenancy_organization RESTART IDENTITY CASCADE"
    )
    common.reset_ledger()
    with connections["secrets"].cursor() as cursor:
        cursor.execute("TRUNCATE workflows_credentialversion, workflows_credential")


def make_workspace():
    from governance.tenancy.models import Organization, Workspace

    organization = Organization.objects.create(name="Bench", slug="bench")
    return Workspace.objects.create(organization=organization, name="Bench", slug="bench", data_region="EU")


def secrets_raw_connection():
    """The psycopg connection under Django's ``secrets`` connection (for COPY)."""
    from django.db import connections

    connections["secrets"].ensure_connection()
    return connections["secrets"].connection


def ratio_line(label: str, ours: float, baseline: float, unit: str = "values/s") -> None:
    common.show(
        label, f"{ours:,.0f} {unit}", f"ratio {ours / baseline:.3f} of raw ({baseline / ours:.1f}× the time)"
    )


# --- this script ---------------------------------------------------------------------------------


def rates(function, count: int, rounds: int) -> float:
    """Median values/s of ``function()`` (which handles ``count`` values) over ``rounds`` runs."""
    function()  # warm-up
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        samples.append(count / (time.perf_counter() - started))
    return statistics.median(samples)


def measure_size(workspace, size: int, count: int, rounds: int) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from governance.crypto import envelope, keyring
    from governance.crypto.fields import Sealed
    from workflows.credentials.models import CredentialVersion

    field = CredentialVersion._meta.get_field("value")
    table = CredentialVersion._meta.db_table
    keyring.active_key(workspace.pk, "credentials")  # created (and cached) before timing
    texts = [(f"v{i:08d}-" + "x" * size)[:size] for i in range(count)]
    payloads = [text.encode() for text in texts]
    instances = [CredentialVersion(id=uuid.uuid4(), workspace_id=workspace.pk) for _ in range(count)]
    contexts = [envelope.context_of(table, field.column, instance.pk) for instance in instances]

    raw = AESGCM(os.urandom(32))
    nonces = [os.urandom(12) for _ in range(count)]
    raw_blobs = [raw.encrypt(nonce, payload, None) for nonce, payload in zip(nonces, payloads, strict=True)]
    sealed = [field.encrypt(instance, text) for instance, text in zip(instances, texts, strict=True)]

    def raw_encrypt():
        for nonce, payload in zip(nonces, payloads, strict=True):
            raw.encrypt(nonce, payload, None)

    def raw_decrypt():
        for nonce, blob in zip(nonces, raw_blobs, strict=True):
            raw.decrypt(nonce, blob, None)

    def envelope_encrypt():
        for instance, payload in zip(instances, payloads, strict=True):
            active = keyring.active_key(workspace.pk, "credentials")
            context = envelope.context_of(table, field.column, instance.pk)
            envelope.seal(active.aead, active.key_id, payload, context)

    def envelope_decrypt():
        for blob, context in zip(sealed, contexts, strict=True):
            envelope.open_sealed(keyring.aead_for(envelope.header_of(blob).key_id), blob, context)

    def field_encrypt():
        for instance, text in zip(instances, texts, strict=True):
            field.encrypt(instance, text)

    def field_decrypt():
        for instance, blob in zip(instances, sealed, strict=True):
            field.decrypt(instance, blob)

    def attribute_read():
        for instance, blob in zip(instances, sealed, strict=True):
            instance.value = Sealed(blob)  # as loaded from the database: drops the plaintext cache
            _ = instance.value

    # Interleave the paths round by round, so that a noisy moment hits all of them.
    paths = {
        "raw encrypt": raw_encrypt,
        "envelope encrypt": envelope_encrypt,
        "field encrypt": field_encrypt,
        "raw decrypt": raw_decrypt,
        "envelope decrypt": envelope_decrypt,
        "field decrypt": field_decrypt,
        "attribute read (version.value)": attribute_read,
    }
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for function in paths.values():
        function()  # warm-up
    for _ in range(rounds):
        for name, function in paths.items():
            started = time.perf_counter()
            function()
            samples[name].append(count / (time.perf_counter() - started))
    median = {name: statistics.median(values) for name, values in samples.items()}

    common.title(f"{size}-byte values: {count:,} per round, median of {rounds} rounds (key ring cache on)")
    common.show("baseline: raw AESGCM.encrypt", f"{median['raw encrypt']:,.0f} values/s")
    for name in ("envelope encrypt", "field encrypt"):
        ratio_line(f"{name}", median[name], median["raw encrypt"])
    common.show("baseline: raw AESGCM.decrypt", f"{median['raw decrypt']:,.0f} values/s")
    for name in ("envelope decrypt", "field decrypt", "attribute read (version.value)"):
        ratio_line(f"{name}", median[name], median["raw decrypt"])
    spread = {
        name: (min(values) / statistics.median(values), max(values) / statistics.median(values))
        for name, values in samples.items()
    }
    worst = max(spread.values(), key=lambda pair: pair[1] - pair[0])
    common.show("spread of rounds around the median (worst path)", f"{worst[0]:.2f}–{worst[1]:.2f}")
    per_value = {name: 1e6 / rate for name, rate in median.items()}
    common.show(
        "per value, field encrypt / decrypt",
        f"{per_value['field encrypt']:.2f} / {per_value['field decrypt']:.2f} µs",
        f"raw {per_value['raw encrypt']:.2f} / {per_value['raw decrypt']:.2f} µs",
    )


def measure_cache_off(workspace, count: int) -> None:
    """Decrypt with ``CRYPTO_KEY_CACHE_SECONDS = 0`` (the test profile): every value looks its data
    key up in the database and unwraps it through the key file provider."""
    from django.conf import settings

    from governance.crypto import keyring
    from workflows.credentials.models import CredentialVersion

    field = CredentialVersion._meta.get_field("value")
    instances = [CredentialVersion(id=uuid.uuid4(), workspace_id=workspace.pk) for _ in range(count)]
    sealed = [field.encrypt(instance, "x" * 40) for instance in instances]

    def decrypt_all():
        for instance, blob in zip(instances, sealed, strict=True):
            field.decrypt(instance, blob)

    cached = rates(decrypt_all, count, 3)
    previous = settings.CRYPTO_KEY_CACHE_SECONDS
    settings.CRYPTO_KEY_CACHE_SECONDS = 0
    keyring.forget_keys()
    try:
        uncached = rates(decrypt_all, count, 3)
    finally:
        settings.CRYPTO_KEY_CACHE_SECONDS = previous
    common.title(f"Key ring cache off (CRYPTO_KEY_CACHE_SECONDS=0), 40-byte values, {count:,} per round")
    common.show("field decrypt, cache on (same run)", f"{cached:,.0f} values/s")
    common.show(
        "field decrypt, cache off",
        f"{uncached:,.0f} values/s",
        f"ratio {uncached / cached:.3f} of cache on ({1e6 / uncached:.0f} µs per value)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--values", type=int, default=20_000, help="values per round and path (default 20000)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument(
        "--cache-off-values", type=int, default=500, help="values decrypted with the cache off"
    )
    add_crypto_database_arguments(parser)
    options = common.parse_arguments(parser, smoke={"values": 200, "rounds": 1, "cache_off_values": 20})
    workspace = setup_crypto(options, key_cache_seconds=60)
    print(
        f"crypto_fields: {options.values:,} values per round, {options.rounds} rounds, sizes {SIZES}, "
        f"databases {options.database} + {options.secrets_database}"
    )
    for size in SIZES:
        measure_size(workspace, size, options.values, options.rounds)
    if options.cache_off_values:
        measure_cache_off(workspace, options.cache_off_values)


if __name__ == "__main__":
    main()
