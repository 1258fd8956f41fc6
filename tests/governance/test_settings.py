"""Settings profiles: production refuses to start without its secrets and passes check --deploy."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "postgres://portal@db.internal:5432/portal",
    "SECRETS_DATABASE_URL": "postgres://portal_secrets@secrets-db.internal:5432/portal_secrets",
    "LEDGER_SIGNING_KEY_FILE": "/etc/portal/ledger-signing-key.pem",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # Only what the test sets: nothing from the test process's own environment leaks in.
    unwanted = {*GOOD, "LEDGER_SIGNING_KEY", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in unwanted}
    clean.update(env, DJANGO_SETTINGS_MODULE="governance.settings.production")
    return subprocess.run(  # noqa: S603 - fixed arguments, our own manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_production_passes_check_deploy_with_no_warnings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=GOOD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_production_refuses_to_start_without(missing):
    env = {k: v for k, v in GOOD.items() if k != missing}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert missing in result.stderr
    assert "refuses to start" in result.stderr


def test_production_refuses_a_short_secret_key():
    result = _manage("check", env={**GOOD, "SECRET_KEY": "short"})
    assert result.returncode != 0
    assert "at least 50 characters" in result.stderr


def test_no_secret_in_settings_output():
    """The secret key never shows up in what the check prints (e.g. on an error)."""
    result = _manage("check", "--deploy", env=GOOD)
    assert GOOD["SECRET_KEY"] not in result.stdout + result.stderr


def test_production_refuses_the_main_database_as_the_secrets_store():
    result = _manage("check", env={**GOOD, "SECRETS_DATABASE_URL": GOOD["DATABASE_URL"]})
    assert result.returncode != 0
    assert "another database" in result.stderr
