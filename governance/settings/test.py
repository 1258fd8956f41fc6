"""Test profile: real PostgreSQL (DATABASE_URL or the local server), fast hashing, eager tasks."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from governance.settings.base import *
from governance.settings.env import database_from_url, env_str

# pytest-xdist runs the suite in worker processes (PYTEST_XDIST_WORKER is gw0, gw1, …); each has
# its own test databases (pytest-django appends _gw0, _gw1, … to the names of both aliases), and
# below its own key files and its own Redis database. Processes the tests start inherit the variable.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_WORKER_SUFFIX = f"-{_WORKER}" if _WORKER else ""

SECRET_KEY = "test-only-key-not-for-any-deployment-0123456789abcdefghijklmnop"  # noqa: S105
_DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DATABASES = {
    "default": database_from_url(_DATABASE_URL),
    # The secrets store: a database of its own on the same server unless SECRETS_DATABASE_URL says.
    "secrets": database_from_url(env_str("SECRETS_DATABASE_URL", _DATABASE_URL.rstrip("/") + "_secrets")),
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True


def _test_broker_db() -> int:
    """Redis database 15 for a run in one process; 14, 13, … for xdist workers gw0, gw1, …"""
    if not _WORKER:
        return 15
    index = int(_WORKER.removeprefix("gw"))
    if index > 13:
        raise ImproperlyConfigured(
            f"xdist worker {_WORKER}: Redis databases 1-14 serve at most 14 workers; run fewer (-n)."
        )
    return 14 - index


# Tests that run a real worker use their own Redis database, apart from a local development broker
# (database 0) and from each other xdist worker. TEST_CELERY_BROKER_URL, when set, is used as is.
CELERY_BROKER_URL = env_str("TEST_CELERY_BROKER_URL", f"redis://127.0.0.1:6379/{_test_broker_db()}")
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING["root"]["level"] = "ERROR"
LEDGER_SIGNING_KEY_FILE = str(VAR_DIR / f"test-ledger-signing-key{_WORKER_SUFFIX}.pem")
LEDGER_SIGNING_KEY_AUTOCREATE = True
CRYPTO_LOCAL_KEY_FILE = str(VAR_DIR / f"test-keys{_WORKER_SUFFIX}" / "kek.json")
# One process: nothing else caches keys, so rotations need not wait before retiring a key.
CRYPTO_KEY_CACHE_SECONDS = 0
CRYPTO_ROTATION_SETTLE_SECONDS = 0
