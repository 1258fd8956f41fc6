"""Test profile: real PostgreSQL (DATABASE_URL or the local server), fast hashing, eager tasks."""

from __future__ import annotations

from governance.settings.base import *
from governance.settings.env import database_from_url, env_str

SECRET_KEY = "test-only-key-not-for-any-deployment-0123456789abcdefghijklmnop"  # noqa: S105
DATABASES = {
    "default": database_from_url(env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
# Tests that run a real worker use their own Redis database, apart from a local development broker.
CELERY_BROKER_URL = env_str("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING["root"]["level"] = "ERROR"
LEDGER_SIGNING_KEY_FILE = str(VAR_DIR / "test-ledger-signing-key.pem")
LEDGER_SIGNING_KEY_AUTOCREATE = True
