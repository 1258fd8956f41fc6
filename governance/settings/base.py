"""Settings shared by every profile. Profiles (local, test, production) import from here."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from governance.settings.env import database_from_url, env_bool, env_fraction, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = False
ALLOWED_HOSTS: list[str] = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    # Our user model and the createsuperuser override come before django.contrib.auth.
    "accounts",
    "governance.tenancy",
    "governance.access",
    "audit",
    "audit.evidence",
    "audit.siem",
    "governance.crypto",
    "workflows",
    "governance.demo",
    "governance.apps.ControlPanelAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    # Brute-force protection (accounts.lockout): after audit and accounts, so that the ledger's
    # failure receiver sees a refused attempt before axes counts it.
    "axes",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.saml",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "guardian",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "governance.core.middleware.RequestContextMiddleware",
    "governance.core.middleware.ContentSecurityPolicyMiddleware",
    # A form post over the size limit gets a page that says so (413), before anything reads it.
    "governance.core.middleware.OversizedFormMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "audit.middleware.ActorContextMiddleware",
    "governance.core.middleware.ExplainedErrorMiddleware",
    # Records each API request a service account makes, with the response's status.
    "workflows.service_accounts.middleware.ServiceAccountUsageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Ends sessions that were ended elsewhere or timed out (after messages: it says why).
    "accounts.middleware.SessionControlMiddleware",
    # A signed-in session that has not passed MFA reaches only sign-in/out and the MFA pages
    # (after OTPMiddleware, which tells whether it has, and after session control).
    "accounts.middleware.MFAEnforcementMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Turns a sign-in refused for too many failures into the lockout page (last: it sees the response).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "governance.urls"
WSGI_APPLICATION = "governance.wsgi.application"
ASGI_APPLICATION = "governance.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "governance.core.context_processors.denial_reasons",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    ),
}
# Credentials live in a database of their own (see governance.core.dbrouters and docs/keys.md):
# its own PostgreSQL database in test and production, its own SQLite file in the quick start.
DATABASES["secrets"] = database_from_url(
    env_str("SECRETS_DATABASE_URL", f"sqlite:///{VAR_DIR / 'secrets.sqlite3'}"),
    conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
)
DATABASE_ROUTERS = ["governance.core.dbrouters.SecretsRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out account or address before any password is checked.
    "accounts.backends.LockoutBackend",
    # Passwords are checked by a backend that never answers permission questions (see
    # accounts.backends); every permission question goes to the decision point.
    "accounts.backends.PasswordOnlyBackend",
    "governance.access.backends.DecisionPointBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "account_login"

# django-allauth: e-mail is the login, nobody signs themselves up.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ADAPTER = "accounts.adapters.ClosedSignupAccountAdapter"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_PREVENT_ENUMERATION = True
# Failed sign-ins are counted by axes (below), in the database, for every login page alike;
# allauth's own cache-based counter for them is off so that one rule, with one message, applies.
ACCOUNT_RATE_LIMITS = {"login_failed": None}

# Brute-force protection (accounts.lockout, docs/identity.md): LOGIN_FAILURE_LIMIT failed sign-ins
# for one account, or from one address, lock that account or address for LOGIN_LOCKOUT_SECONDS.
# Accounts are counted by a keyed digest of the identifier typed in (existing or not: the same
# answer either way); a successful sign-in clears its account's count, never its address's.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
if AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT must be at least 1.")
AXES_COOLOFF_TIME = timedelta(seconds=env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own: the account OR the address
AXES_USERNAME_CALLABLE = "accounts.lockout.attempt_identifier"
AXES_USERNAME_FORM_FIELD = "email"  # a plain string: axes' lazy default trips code that reads settings
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.attempt_address"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = False  # accounts.receivers clears the account's count only
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a lockout ends when its cool-off says
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are in the ledger and in UserSession
AXES_ENABLE_ADMIN = False  # the control panel shows lockouts on the user list instead
AXES_SENSITIVE_PARAMETERS = ["username", "login", "email", "password", "ip_address"]
AXES_VERBOSE = False

# Single sign-on (accounts.sso): the identity providers are our own governed rows, handed to
# allauth by the adapter; the provider classes add a nonce, always check ID token signatures and
# keep what SAML replay protection and the MFA decision need.
SOCIALACCOUNT_ADAPTER = "accounts.sso.adapter.GovernedSocialAccountAdapter"
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {"provider_class": "accounts.sso.providers.PortalOIDCProvider"},
    "saml": {"provider_class": "accounts.sso.providers.PortalSAMLProvider"},
}
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # accounts are matched by our own rules (same organisation)
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = env_int("SOCIALACCOUNT_REQUESTS_TIMEOUT", 10)

# The network boundary of every server-side fetch (governance.core.outbound; docs/operations.md):
# https only, no internal, private, link-local or metadata address. OUTBOUND_ALLOW_LIST names host
# names or networks (CIDR) the whole deployment may reach all the same (an organisation's own
# allow-list rules add to it); OUTBOUND_ALLOW_PLAIN_HTTP the hosts or networks that may be called
# over plain http (development and tests only). A host name lookup may take OUTBOUND_DNS_TIMEOUT s.
OUTBOUND_ALLOW_LIST = env_list("OUTBOUND_ALLOW_LIST", [])
OUTBOUND_ALLOW_PLAIN_HTTP = env_list("OUTBOUND_ALLOW_PLAIN_HTTP", [])
OUTBOUND_DNS_TIMEOUT = env_int("OUTBOUND_DNS_TIMEOUT", 5)

# django-guardian: no anonymous user row; grants use direct foreign-key tables.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = True

SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Session control (accounts.sessions): idle and absolute timeouts, and how many sessions a person
# may hold at once — past it, the oldest ends ("end_oldest") or the new one is refused ("refuse").
SESSION_IDLE_TIMEOUT = env_int("SESSION_IDLE_TIMEOUT", 30 * 60)
SESSION_ABSOLUTE_TIMEOUT = env_int("SESSION_ABSOLUTE_TIMEOUT", 12 * 60 * 60)
SESSION_CONCURRENCY_LIMIT = env_int("SESSION_CONCURRENCY_LIMIT", 5)
SESSION_LIMIT_POLICY = env_str("SESSION_LIMIT_POLICY", "end_oldest")
if SESSION_LIMIT_POLICY not in ("end_oldest", "refuse"):
    raise ImproperlyConfigured("SESSION_LIMIT_POLICY must be end_oldest or refuse.")
# MFA (accounts.mfa, docs/identity.md): TOTP apps, single-use backup codes, WebAuthn keys.
# Failed codes slow a device down: 1 s after the first failure, doubling with each further one.
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Governance portal")
OTP_TOTP_THROTTLE_FACTOR = env_int("OTP_TOTP_THROTTLE_FACTOR", 1)
MFA_BACKUP_CODE_COUNT = 10
MFA_BACKUP_CODE_THROTTLE_FACTOR = env_int("MFA_BACKUP_CODE_THROTTLE_FACTOR", 1)
# WebAuthn: the relying party is the portal's domain; credentials are bound to it for good.
OTP_WEBAUTHN_RP_ID = env_str("OTP_WEBAUTHN_RP_ID", "localhost")
OTP_WEBAUTHN_RP_NAME = env_str("OTP_WEBAUTHN_RP_NAME", "Governance portal")
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list("OTP_WEBAUTHN_ALLOWED_ORIGINS", ["http://localhost:8000"])
# A key is a second factor here, never a way to sign in without the password (or SSO).
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'",
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "workflows.service_accounts.api.authentication.ServiceAccountAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["governance.access.api.DecisionPointPermission"],
    "DEFAULT_FILTER_BACKENDS": ["governance.access.api.VisibleToFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "governance.core.api.AutoSchema",
    "EXCEPTION_HANDLER": "governance.core.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["governance.core.parsers.SafeJSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
REST_KNOX = {
    "TOKEN_TTL": None,  # set per profile below
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Governance portal API",
    "DESCRIPTION": "Workspaces, memberships and, later, workflow changes and evidence.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files: no third-party script, CSP stays 'self'.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Runs and step runs each have a "status" of their own: named, so that the schema's other
    # enums keep the names they were published with.
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "workflows.executions.models.ExecutionStatus",
        "StepStatusEnum": "workflows.executions.models.StepStatus",
    },
}

# The Celery app the task modules bind to when they are imported (governance.core.jobs).
BACKGROUND_JOBS_APP = "governance.celery.app"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")

# The cache holds short-lived counters shared by every process: allauth's rate limits and the
# throttles of failed SCIM and service-account tokens (governance/core/throttle.py). Set CACHE_URL
# to a Redis URL wherever more than one process serves requests; without it each process counts
# on its own (a per-process memory cache, fine for one development server and for the tests).
CACHE_URL = env_str("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Failed token attempts (SCIM bearer tokens, service-account tokens): this many failures within the
# window, per token prefix and per client address, lock that prefix or address out for a while.
TOKEN_THROTTLE_FAILURES = env_int("TOKEN_THROTTLE_FAILURES", 10)
TOKEN_THROTTLE_WINDOW_SECONDS = env_int("TOKEN_THROTTLE_WINDOW_SECONDS", 300)
TOKEN_THROTTLE_LOCKOUT_SECONDS = env_int("TOKEN_THROTTLE_LOCKOUT_SECONDS", 900)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", None)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Workers keep the LOGGING below (with its redacting filter) instead of installing their own handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "governance@localhost")
# For the SMTP backend (django.core.mail.backends.smtp.EmailBackend).
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)

# Every handler redacts secrets (governance.core.redaction). Django's own handlers are declared here
# too, with the filter, so that none of its defaults writes an unredacted record: the "django"
# logger mails errors to ADMINS (when DEBUG is off) and prints through the root console.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "governance.core.middleware.RequestContextLogFilter"},
        "client_errors": {"()": "governance.core.middleware.ClientErrorLogFilter"},
        "redact": {"()": "governance.core.redaction.RedactingFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_context", "client_errors", "redact"],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact"],
        },
        "mail_admins": {
            "level": "ERROR",
            "class": "django.utils.log.AdminEmailHandler",
            "filters": ["require_debug_false", "redact"],
        },
    },
    "loggers": {
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
# Error pages and error e-mails redact known secrets and credential formats, with DEBUG on or off.
DEFAULT_EXCEPTION_REPORTER = "governance.core.redaction.RedactingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "governance.core.redaction.RedactingExceptionReporterFilter"

SILENCED_SYSTEM_CHECKS = [
    # guardian's backend is deliberately not installed: the decision point consults guardian's
    # grants itself, so that no backend can allow what a deny rule refuses.
    "guardian.W001",
]

# The ledger: signing key outside the database (see docs/ledger.md).
LEDGER_SIGNING_KEY = env_str("LEDGER_SIGNING_KEY", None)
LEDGER_SIGNING_KEY_FILE = env_str("LEDGER_SIGNING_KEY_FILE", str(VAR_DIR / "ledger-signing-key.pem"))
LEDGER_SIGNING_KEY_AUTOCREATE = False
LEDGER_SEAL_BATCH = env_int("LEDGER_SEAL_BATCH", 20_000)
LEDGER_HEAD_INTERVAL_SECONDS = env_int("LEDGER_HEAD_INTERVAL_SECONDS", 1)
# Sealed events without a signed head for longer than this are reported by audit_verify.
LEDGER_HEAD_GRACE_SECONDS = env_int("LEDGER_HEAD_GRACE_SECONDS", 600)
# Retention (docs/retention.md): the shortest time any event is kept, whatever its workspace's
# frameworks (never below 6 months: the database refuses to prune younger events), and where the
# signed archives of pruned events are written.
LEDGER_RETENTION_FLOOR_MONTHS = env_int("LEDGER_RETENTION_FLOOR_MONTHS", 12)
LEDGER_ARCHIVE_DIR = Path(env_str("LEDGER_ARCHIVE_DIR", str(VAR_DIR / "ledger-archives")))
CELERY_BEAT_SCHEDULE = {
    "ledger-seal": {"task": "audit.tasks.ledger_seal", "schedule": 1.0},
}

# Service accounts: tokens rotate at least every 90 days (a lower ceiling may be configured),
# the previous token keeps working for a grace window after a rotation, unused accounts are
# disabled by the daily sweep.
SERVICE_ACCOUNT_ROTATION_DAYS = env_int("SERVICE_ACCOUNT_ROTATION_DAYS", 90)
if not 1 <= SERVICE_ACCOUNT_ROTATION_DAYS <= 90:
    raise ImproperlyConfigured("SERVICE_ACCOUNT_ROTATION_DAYS must be between 1 and 90.")
SERVICE_ACCOUNT_ROTATION_GRACE = timedelta(hours=env_int("SERVICE_ACCOUNT_ROTATION_GRACE_HOURS", 24))
SERVICE_ACCOUNT_ROTATION_WARNING_DAYS = env_int("SERVICE_ACCOUNT_ROTATION_WARNING_DAYS", 14)
SERVICE_ACCOUNT_DORMANT_DAYS = env_int("SERVICE_ACCOUNT_DORMANT_DAYS", 30)
CELERY_BEAT_SCHEDULE["service-accounts-sweep"] = {
    "task": "workflows.service_accounts_sweep",
    # A crontab, written as its fields: settings do not import Celery (governance/celery.py makes it).
    "schedule": {"crontab": {"hour": 3, "minute": 17}},
}

# Keys (see docs/keys.md): the key provider holding the key-encryption keys, and how long an
# unwrapped data key may stay in a process's memory. A rotation waits that long before it
# retires the previous data key, so that no process still encrypts under it.
CRYPTO_KEY_PROVIDER = env_str("CRYPTO_KEY_PROVIDER", "local")
CRYPTO_LOCAL_KEY_FILE = env_str("CRYPTO_LOCAL_KEY_FILE", str(VAR_DIR / "keys" / "kek.json"))
CRYPTO_PKCS11_MODULE = env_str("CRYPTO_PKCS11_MODULE", "")
CRYPTO_PKCS11_TOKEN_LABEL = env_str("CRYPTO_PKCS11_TOKEN_LABEL", "")
CRYPTO_PKCS11_PIN = env_str("CRYPTO_PKCS11_PIN", "")
CRYPTO_KEY_CACHE_SECONDS = env_int("CRYPTO_KEY_CACHE_SECONDS", 60)
# Twice the cache time: a transaction that encrypted under the old key just before its cache entry
# expired has that long again to commit before the final sweep.
CRYPTO_ROTATION_SETTLE_SECONDS = env_int("CRYPTO_ROTATION_SETTLE_SECONDS", 2 * CRYPTO_KEY_CACHE_SECONDS)
CRYPTO_RETIRED_KEY_GRACE_SECONDS = env_int("CRYPTO_RETIRED_KEY_GRACE_SECONDS", 30)
CELERY_BEAT_SCHEDULE["crypto-rotations-resume"] = {
    "task": "governance.crypto.tasks.rotation_jobs_resume",
    "schedule": 60.0,
}
CREDENTIAL_ROTATION_GRACE_SECONDS = env_int("CREDENTIAL_ROTATION_GRACE_SECONDS", 3600)
CELERY_BEAT_SCHEDULE["credential-versions-expire"] = {
    "task": "workflows.tasks.credential_versions_expire_task",
    "schedule": 300.0,
}
# Approved workflow changes that did not apply at their last approval (the policies deferred them,
# or the last approver may not activate) are applied by the portal as soon as the policies allow.
CELERY_BEAT_SCHEDULE["workflow-changes-apply-due"] = {
    "task": "workflows.changes_apply_due",
    "schedule": 60.0,
}

# Executions (docs/executions.md). A step run delivered more than EXECUTION_MAX_DELIVERIES times
# becomes poisoned; a claim holds its row for EXECUTION_LEASE_SECONDS (past the task's hard time
# limit), after which the sweep sends it again; a pending row sent this long ago without a claim
# is sent again (its message was lost).
EXECUTION_MAX_DELIVERIES = env_int("EXECUTION_MAX_DELIVERIES", 5)
EXECUTION_LEASE_SECONDS = env_int("EXECUTION_LEASE_SECONDS", 120)
EXECUTION_REDISPATCH_SECONDS = env_int("EXECUTION_REDISPATCH_SECONDS", 300)
# A step that fails with a retryable error (timeout, HTTP 429 or 5xx) is tried again, up to
# EXECUTION_MAX_ATTEMPTS attempts in all, after an exponential, jittered, capped delay.
EXECUTION_MAX_ATTEMPTS = env_int("EXECUTION_MAX_ATTEMPTS", 3)
EXECUTION_RETRY_BASE_SECONDS = env_int("EXECUTION_RETRY_BASE_SECONDS", 10)
EXECUTION_RETRY_MAX_SECONDS = env_int("EXECUTION_RETRY_MAX_SECONDS", 600)
# How long an http_request step waits for the integration (well inside the task's 60 s soft limit).
EXECUTION_HTTP_TIMEOUT_SECONDS = env_int("EXECUTION_HTTP_TIMEOUT_SECONDS", 20)
# AI steps (docs/ai-controls.md): a workspace's defaults until its owners or officers set their own.
# An input whose injection risk score reaches AI_RISK_THRESHOLD sends the step's decision to a person;
# a run makes at most AI_MAX_CALLS_PER_EXECUTION model calls; a workspace spends at most
# AI_DAILY_TOKEN_BUDGET tokens a (UTC) day. AI_TIMEOUT_SECONDS caps one call (never past 15 s before
# the step's soft time limit of 60 s, so that the call's decision record is always written).
# 0.35 = workflows.executions.guardrails.DEFAULT_THRESHOLD: on the evaluation's validation split it
# flagged every attack and no business text, where 0.5 missed 1.4 % of the attacks (docs/ai-controls.md).
AI_RISK_THRESHOLD = env_fraction("AI_RISK_THRESHOLD", 0.35)
AI_MAX_CALLS_PER_EXECUTION = env_int("AI_MAX_CALLS_PER_EXECUTION", 20)
AI_DAILY_TOKEN_BUDGET = env_int("AI_DAILY_TOKEN_BUDGET", 200_000)
AI_TIMEOUT_SECONDS = env_int("AI_TIMEOUT_SECONDS", 40)  # at most 45: 15 s inside the step's 60 s soft limit
CELERY_BEAT_SCHEDULE["execution-steps-due-dispatch"] = {
    "task": "workflows.steps_due_dispatch",
    "schedule": 15.0,
}
# Scheduled workflows (docs/executions.md): the beat looks every 30 s; a slot older than the window
# when first seen (the beat was down) is not made up.
EXECUTION_SCHEDULE_WINDOW_SECONDS = env_int("EXECUTION_SCHEDULE_WINDOW_SECONDS", 120)
CELERY_BEAT_SCHEDULE["execution-schedules-tick"] = {
    "task": "workflows.schedules_tick",
    "schedule": 30.0,
}
# Signed webhooks (docs/executions.md): the largest body accepted, how far a signature's timestamp
# may be from now, requests per workflow and minute, and how long a replaced secret still works.
WEBHOOK_MAX_BYTES = env_int("WEBHOOK_MAX_BYTES", 64 * 1024)
WEBHOOK_TOLERANCE_SECONDS = env_int("WEBHOOK_TOLERANCE_SECONDS", 300)
WEBHOOK_RATE_PER_MINUTE = env_int("WEBHOOK_RATE_PER_MINUTE", 120)
WEBHOOK_SECRET_GRACE_HOURS = env_int("WEBHOOK_SECRET_GRACE_HOURS", 24)
# Human tasks past their deadline end with their step's timeout outcome (reject by default).
CELERY_BEAT_SCHEDULE["execution-human-tasks-expire"] = {
    "task": "workflows.human_tasks_expire",
    "schedule": 60.0,
}
# Raising a halt or a quarantine sends this task at once; the beat runs it too, as a backstop.
CELERY_BEAT_SCHEDULE["execution-halts-enforce"] = {
    "task": "workflows.halts_enforce",
    "schedule": 15.0,
}

# Evidence packages ordered in the control panel (see docs/evidence.md): where the built ZIPs
# live (a directory of their own, 0700; files 0600), how long a download link works, how long a
# package is kept before the beat deletes it, and how many times a build is attempted.
EVIDENCE_DIR = Path(env_str("PORTAL_EVIDENCE_DIR", str(VAR_DIR / "evidence")))
EVIDENCE_LINK_TTL_SECONDS = env_int("EVIDENCE_LINK_TTL_SECONDS", 24 * 3600)
EVIDENCE_RETENTION_DAYS = env_int("EVIDENCE_RETENTION_DAYS", 7)
EVIDENCE_BUILD_MAX_ATTEMPTS = env_int("EVIDENCE_BUILD_MAX_ATTEMPTS", 3)
CELERY_BEAT_SCHEDULE["evidence-orders-expire"] = {
    "task": "audit.tasks.evidence_orders_expire",
    "schedule": 3600.0,
}
# SIEM sinks (docs/siem.md): the beat sends a pump per sink every few seconds; a pump's lease
# outlives a slow batch; failures back off (jittered, doubling from the base up to the cap) and
# after SIEM_MAX_FAILURES attempts the batch becomes a dead letter.
SIEM_PUMP_INTERVAL_SECONDS = env_int("SIEM_PUMP_INTERVAL_SECONDS", 5)
SIEM_LEASE_SECONDS = env_int("SIEM_LEASE_SECONDS", 120)
SIEM_MAX_FAILURES = env_int("SIEM_MAX_FAILURES", 8)
SIEM_BACKOFF_BASE_SECONDS = env_int("SIEM_BACKOFF_BASE_SECONDS", 2)
SIEM_BACKOFF_CAP_SECONDS = env_int("SIEM_BACKOFF_CAP_SECONDS", 300)
CELERY_BEAT_SCHEDULE["siem-pumps-dispatch"] = {
    "task": "audit.siem.tasks.siem_pumps_dispatch",
    "schedule": float(SIEM_PUMP_INTERVAL_SECONDS),
}
# Conditional access (accounts.conditional, docs/identity.md). TRUSTED_PROXIES: CIDRs of reverse
# proxies whose X-Forwarded-For and country header are believed; from any other peer both are
# ignored. The country header is set by such a proxy (no GeoIP database ships with the portal).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_proxy!r} is not an address or CIDR network."
        ) from None
CONDITIONAL_ACCESS_COUNTRY_HEADER = env_str("CONDITIONAL_ACCESS_COUNTRY_HEADER", "X-Client-Country")
# The device-management proxy signs X-Device-Compliance with this HMAC-SHA256 key (empty: no device
# is ever compliant by header); a signature older than the window is stale.
DEVICE_COMPLIANCE_KEY = env_str("DEVICE_COMPLIANCE_KEY", "")
DEVICE_COMPLIANCE_MAX_AGE_SECONDS = env_int("DEVICE_COMPLIANCE_MAX_AGE_SECONDS", 300)
