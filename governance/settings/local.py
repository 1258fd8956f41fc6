"""Quick-start profile: embedded SQLite under var/, tasks run eagerly, debug pages on loopback."""

from __future__ import annotations

import secrets

from governance.settings.base import *
from governance.settings.env import env_bool, env_int, env_list, env_str

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
# The quick start's demo billing service (scripts/demo_service.py) speaks plain http on loopback;
# the demo organisation's allow-list rule for 127.0.0.1 is what lets its integration reach it.
OUTBOUND_ALLOW_PLAIN_HTTP = env_list("OUTBOUND_ALLOW_PLAIN_HTTP", ["127.0.0.1"])
DEMO_SERVICE_PORT = env_int("DEMO_SERVICE_PORT", 8765)
# E-mails of the quick start are files under var/mail/, one per message, instead of text mixed into
# the server's and the seed's output; EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend
# prints them instead.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "mail"
LEDGER_SIGNING_KEY_AUTOCREATE = True
# One process in the quick start: a rotation need not wait for other processes' key caches.
CRYPTO_ROTATION_SETTLE_SECONDS = 0

# Several processes share the SQLite files when `make run` starts a worker and beat beside the web
# server (scripts/quickstart.py): write-ahead logging lets readers go on during a write, a write
# transaction takes its lock when it begins (no deadlock when two upgrade at once), and a writer
# waits up to 20 s for the lock instead of failing at once.
for _alias in ("default", "secrets"):
    if DATABASES[_alias]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES[_alias].setdefault("OPTIONS", {}).update(
            timeout=20,
            transaction_mode="IMMEDIATE",
            init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        )
        # SQLite cannot hold the few unique constraints that treat NULLs as equal; the quick start
        # is a single-organisation demo, and production runs on PostgreSQL, which holds them.
        if "models.W047" not in SILENCED_SYSTEM_CHECKS:
            SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "models.W047"]

# The broker that needs no server (scripts/quickstart.py uses it when no Redis answers).
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(_broker_dir / "control"),
    }
    (_broker_dir / "control").mkdir(exist_ok=True)

# One line per task is noise in the quick start's terminal; failures are still logged.
LOGGING["loggers"]["celery.app.trace"] = {"level": "WARNING"}
