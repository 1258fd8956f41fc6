"""The completeness backstop on the rest of identity: API tokens, second factors and backup
codes, addresses, identity-provider links, Django permission links and conditional access.

Secrets (``!name``) are captured as changed or not, never by value; counters that every
sign-in moves (throttling, last use, drift, signature counts) are left out, so a sign-in is not
a change of note.
"""

from django.db import migrations

from audit import triggers

TABLES = (
    ("knox_authtoken", "token_key", ("!digest",)),
    (
        "otp_totp_totpdevice",
        "id",
        (
            "!key",
            "drift",
            "last_t",
            "throttling_failure_count",
            "throttling_failure_timestamp",
            "last_used_at",
        ),
    ),
    (
        "otp_static_staticdevice",
        "id",
        ("throttling_failure_count", "throttling_failure_timestamp", "last_used_at"),
    ),
    ("otp_static_statictoken", "id", ("!token",)),
    (
        "accounts_backupcodedevice",
        "id",
        ("throttling_failure_count", "throttling_failure_timestamp", "last_used_at"),
    ),
    ("accounts_backupcode", "id", ("!digest",)),
    ("django_otp_webauthn_webauthncredential", "id", ("sign_count", "backup_state", "last_used_at")),
    ("account_emailaddress", "id", ()),
    ("socialaccount_socialaccount", "id", ("last_login", "extra_data")),
    ("socialaccount_socialtoken", "id", ("!token", "!token_secret")),
    ("socialaccount_socialapp", "id", ("!secret", "!key")),
    ("accounts_conditionalaccesspolicy", "id", ()),
    ("accounts_user_groups", "id", ()),
    ("accounts_user_user_permissions", "id", ()),
    ("auth_group_permissions", "id", ()),
)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_user_deactivated_by_provider_allowed_domains"),
        ("audit", "0009_backstop_by_content"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("knox", "0009_extend_authtoken_field"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
        ("account", "0009_emailaddress_unique_primary_email"),
        ("socialaccount", "0006_alter_socialaccount_extra_data"),
        ("django_otp_webauthn", "0004_webauthnuserhandle"),
    ]

    operations = [triggers.capture_operation(*TABLES)]
