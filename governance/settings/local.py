"""Quick-start profile: embedded SQLite under var/, tasks run eagerly, debug pages on loopback."""

from __future__ import annotations

import secrets

from governance.settings.base import *
from governance.settings.env import env_bool, env_str

DEBUG = env_bool("DEBUG", True)
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _local_secret_key() -> str:
    """Create var/secret_key once (mode 0600) so the quick start needs no configuration."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(64))
    return path.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY") or _local_secret_key()
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", True)
# E-mails of the quick start are files under var/mail/, one per message, instead of text mixed into
# the server's and the seed's output; EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend
# prints them instead.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "mail"
LEDGER_SIGNING_KEY_AUTOCREATE = True
# One process in the quick start: a rotation need not wait for other processes' key caches.
CRYPTO_ROTATION_SETTLE_SECONDS = 0
