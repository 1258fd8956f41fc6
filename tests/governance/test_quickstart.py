"""The quick-start path on embedded SQLite: migrate, seed, seal, verify, and the ledger refuses edits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TAMPER = """
from django.db import DatabaseError, transaction
from audit.models import AuditEvent
for attempt in (lambda: AuditEvent.objects.filter(sequence=1).delete(),
                lambda: AuditEvent.objects.filter(sequence=1).update(action="user.created")):
    try:
        with transaction.atomic():
            attempt()
    except DatabaseError as error:
        print("refused:", error)
"""


def _manage(*args: str, var: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(DJANGO_SETTINGS_MODULE="governance.settings.local", PORTAL_VAR_DIR=str(var))
    return subprocess.run(  # noqa: S603 - fixed arguments, our own manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_quick_start_on_sqlite(tmp_path):
    assert _manage("migrate", "--no-input", var=tmp_path).returncode == 0
    assert _manage("migrate", "--no-input", "--database", "secrets", var=tmp_path).returncode == 0
    seeded = _manage("seed_demo", var=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert "builder@demo.example" in seeded.stdout
    assert (tmp_path / "portal.sqlite3").exists()
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    # Credentials went to their own SQLite file, under a key file that only the owner can read.
    assert oct((tmp_path / "keys" / "kek.json").stat().st_mode & 0o777) == "0o600"
    listed = _manage("shell", "-c", "from workflows.credentials.models import Credential as C; print(C.objects.using('secrets').count())",
                     var=tmp_path)  # fmt: skip
    assert int(listed.stdout.split()[-1]) >= 1, listed.stderr
    assert b"demo-" not in (tmp_path / "portal.sqlite3").read_bytes()
    assert b"demo-" not in (tmp_path / "secrets.sqlite3").read_bytes()  # encrypted there
    # A data key rotation on SQLite (its UUIDs are stored without dashes) moves every value.
    rotated = _manage("crypto_rotate_data_key", "--workspace", "customer-ops-eu", "--purpose", "credentials",
                      var=tmp_path)  # fmt: skip
    assert "completed" in rotated.stdout, rotated.stdout + rotated.stderr
    sealed = _manage("audit_seal", var=tmp_path)
    assert "signed tree head #1" in sealed.stdout, sealed.stderr
    assert oct((tmp_path / "ledger-signing-key.pem").stat().st_mode & 0o777) == "0o600"
    verified = _manage("audit_verify", var=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert "Ledger intact" in verified.stdout
    tampered = _manage("shell", "-c", TAMPER, var=tmp_path)
    assert tampered.stdout.count("refused: the audit ledger is append-only") == 2, (
        tampered.stdout + tampered.stderr
    )
