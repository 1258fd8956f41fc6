"""Read configuration from the environment, failing fast on bad values.

Settings modules are the only place that read the environment; code elsewhere reads
``django.conf.settings`` at call time, never at import time.
"""

from __future__ import annotations

import os

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    """Return the variable, the default, or fail when it is required and missing."""
    value = os.environ.get(name)
    if value is None or value == "":
        if required:
            raise ImproperlyConfigured(
                f"Set the environment variable {name}; this profile refuses to start without it."
            )
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    """Parse a boolean such as 1/0, true/false, yes/no, on/off."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use true or false.")


def env_int(name: str, default: int) -> int:
    """Parse an integer variable."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None


def env_fraction(name: str, default: float) -> float:
    """Parse a number between 0 and 1."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number between 0 and 1.")
    return value


def env_list(name: str, default: list[str] | None = None, *, required: bool = False) -> list[str]:
    """Parse a comma-separated list, ignoring blanks."""
    raw = env_str(name, None, required=required)
    if raw is None:
        return list(default or [])
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if required and not items:
        raise ImproperlyConfigured(f"Set {name} to a comma-separated list; it is empty.")
    return items


def database_from_url(url: str, **options) -> dict:
    """A DATABASES entry from a URL. On PostgreSQL, JIT is off: the portal's queries are short
    and the JIT compiled a capped count over the ledger for 290 ms to save part of a 55 ms scan."""
    database = dj_database_url.parse(url, **options)
    if database["ENGINE"] == "django.db.backends.postgresql":
        database.setdefault("OPTIONS", {})["options"] = "-c jit=off"
    return database
