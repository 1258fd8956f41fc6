"""Test profile: real PostgreSQL (DATABASE_URL or the local server), fast hashing, eager tasks."""

from __future__ import annotations

from governance.settings.base import *
from governance.settings.env import database_from_url, env_str

SECRET_KEY = "test-only-key-not-for-any-deployment-0123456789abcdefghijklmnop"  # noqa: S105
_DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DATABASES = {
    "default": database_from_url(_DATABASE_URL),
    # The secrets store: a database of its own on the same server unless SECRETS_DATABASE_URL says.
    "secrets": database_from_url(env_str("SECRETS_DATABASE_URL", _DATABASE_URL.rstrip("/") + "_secrets")),
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
# Tests that run a real worker use their own Redis database, apart from a local development broker.
CELERY_BROKER_URL = env_str("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING["root"]["level"] = "ERROR"
LEDGER_SIGNING_KEY_FILE = str(VAR_DIR / "test-ledger-signing-key.pem")
LEDGER_SIGNING_KEY_AUTOCREATE = True
CRYPTO_LOCAL_KEY_FILE = str(VAR_DIR / "test-keys" / "kek.json")
# One process: nothing else caches keys, so rotations need not wait before retiring a key.
CRYPTO_KEY_CACHE_SECONDS = 0
CRYPTO_ROTATION_SETTLE_SECONDS = 0
