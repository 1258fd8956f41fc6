"""Production profile: refuses to start without its secrets and passes ``check --deploy``."""

from __future__ import annotations

import os
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from governance.settings.base import *
from governance.settings.env import env_bool, env_int, env_list, env_str

DEBUG = False
SECRET_KEY = env_str("SECRET_KEY", required=True)
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters of random data.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", required=True)
if not os.environ.get("DATABASE_URL"):
    raise ImproperlyConfigured(
        "Set the environment variable DATABASE_URL; this profile refuses to start without it."
    )
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if not os.environ.get("SECRETS_DATABASE_URL"):
    raise ImproperlyConfigured(
        "Set SECRETS_DATABASE_URL; this profile refuses to start without it "
        "(credentials live in a database of their own, apart from DATABASE_URL)."
    )
if os.environ["SECRETS_DATABASE_URL"] == os.environ["DATABASE_URL"]:
    raise ImproperlyConfigured("SECRETS_DATABASE_URL must name another database than DATABASE_URL.")
DATABASES["secrets"]["CONN_HEALTH_CHECKS"] = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [f"https://{host}" for host in ALLOWED_HOSTS])
# WebAuthn: the first allowed host is the relying party unless said otherwise; origins are https.
OTP_WEBAUTHN_RP_ID = env_str("OTP_WEBAUTHN_RP_ID", ALLOWED_HOSTS[0])
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list(
    "OTP_WEBAUTHN_ALLOWED_ORIGINS", [f"https://{host}" for host in ALLOWED_HOSTS]
)

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_NAME = "__Host-csrftoken"
REST_KNOX = {**REST_KNOX, "TOKEN_TTL": timedelta(hours=env_int("API_TOKEN_TTL_HOURS", 24))}
# Throttles and rate limits must be shared by every worker: without CACHE_URL, the Redis broker is
# the cache too (a separate database number is advisable: CACHE_URL=redis://host:6379/1).
if not CACHE_URL and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHE_URL = CELERY_BROKER_URL
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}

if not (LEDGER_SIGNING_KEY or os.environ.get("LEDGER_SIGNING_KEY_FILE")):
    raise ImproperlyConfigured(
        "Set LEDGER_SIGNING_KEY_FILE (a PEM Ed25519 key, mode 0600) or LEDGER_SIGNING_KEY; "
        "this profile refuses to start without the ledger's signing key."
    )
