"""The event codes this app writes to the ledger (registered in its ``AppConfig.ready``)."""

from audit.events import Category, EventCode


class AccountEvent(EventCode):
    """Identity: accounts, API tokens, sign-in, lockout, conditional access, sessions, MFA, SSO, SCIM."""

    USER_CREATED = "user.created", Category.ADMIN
    USER_UPDATED = "user.updated", Category.ADMIN
    USER_DEACTIVATED = "user.deactivated", Category.ADMIN
    USER_REACTIVATED = "user.reactivated", Category.ADMIN
    USER_PASSWORD_SET = "user.password_set", Category.ADMIN
    API_TOKEN_CREATED = "api_token.created", Category.AUTHENTICATION
    API_TOKEN_REVOKED = "api_token.revoked", Category.AUTHENTICATION
    # Sign-in (docs/identity.md): success, failure with its reason, lockouts and their lifting.
    LOGIN_SUCCEEDED = "login.succeeded", Category.AUTHENTICATION
    LOGIN_FAILED = "login.failed", Category.AUTHENTICATION
    LOGIN_LOCKED_OUT = "login.locked_out", Category.AUTHENTICATION
    LOGIN_UNLOCKED = "login.unlocked", Category.ADMIN
    # Older names of login.succeeded and login.failed: still accepted so that older rows read alike.
    AUTH_LOGIN = "auth.login", Category.AUTHENTICATION
    AUTH_LOGIN_FAILED = "auth.login_failed", Category.AUTHENTICATION
    # Conditional access: each decision with its score and reasons; the per-organisation rules.
    ACCESS_CONDITIONAL_DECISION = "access.conditional_decision", Category.ACCESS
    CONDITIONAL_ACCESS_POLICY_CREATED = "conditional_access.policy_created", Category.ADMIN
    CONDITIONAL_ACCESS_POLICY_UPDATED = "conditional_access.policy_updated", Category.ADMIN
    AUTH_LOGOUT = "auth.logout", Category.AUTHENTICATION
    SESSION_STARTED = "session.started", Category.AUTHENTICATION
    SESSION_ENDED = "session.ended", Category.AUTHENTICATION
    SESSION_FORCED_END = "session.forced_end", Category.AUTHENTICATION
    MFA_ENROLMENT_STARTED = "mfa.enrolment_started", Category.AUTHENTICATION
    MFA_ENROLLED = "mfa.enrolled", Category.AUTHENTICATION
    MFA_VERIFIED = "mfa.verified", Category.AUTHENTICATION
    MFA_FAILED = "mfa.failed", Category.AUTHENTICATION
    MFA_BACKUP_CODES_GENERATED = "mfa.backup_codes_generated", Category.AUTHENTICATION
    MFA_BACKUP_CODE_USED = "mfa.backup_code_used", Category.AUTHENTICATION
    MFA_DEVICE_REMOVED = "mfa.device_removed", Category.AUTHENTICATION
    MFA_RESET = "mfa.reset", Category.AUTHENTICATION
    SSO_LOGIN = "sso.login", Category.AUTHENTICATION
    SSO_LOGIN_FAILED = "sso.login_failed", Category.AUTHENTICATION
    SSO_USER_PROVISIONED = "sso.user_provisioned", Category.ADMIN
    SSO_ACCOUNT_LINKED = "sso.account_linked", Category.ADMIN
    IDENTITY_PROVIDER_CREATED = "identity_provider.created", Category.ADMIN
    IDENTITY_PROVIDER_UPDATED = "identity_provider.updated", Category.ADMIN
    IDENTITY_PROVIDER_MAPPING_CREATED = "identity_provider.mapping_created", Category.ADMIN
    IDENTITY_PROVIDER_MAPPING_DELETED = "identity_provider.mapping_deleted", Category.ADMIN
    SIGN_IN_POLICY_CHANGED = "sign_in_policy.changed", Category.ADMIN
    # SCIM provisioning (see docs/identity.md): tokens, refused calls, every change applied.
    SCIM_TOKEN_CREATED = "scim.token_created", Category.ADMIN
    SCIM_TOKEN_REVOKED = "scim.token_revoked", Category.ADMIN
    SCIM_AUTH_FAILED = "scim.auth_failed", Category.AUTHENTICATION
    SCIM_LOCKED_OUT = "scim.locked_out", Category.AUTHENTICATION
    SCIM_CHANGE_REFUSED = "scim.change_refused", Category.ACCESS
    SCIM_USER_CREATED = "scim.user_created", Category.ADMIN
    SCIM_USER_REPLACED = "scim.user_replaced", Category.ADMIN
    SCIM_USER_PATCHED = "scim.user_patched", Category.ADMIN
    SCIM_USER_DEACTIVATED = "scim.user_deactivated", Category.ADMIN
    SCIM_USER_DELETED = "scim.user_deleted", Category.ADMIN
    SCIM_GROUP_CREATED = "scim.group_created", Category.ADMIN
    SCIM_GROUP_REPLACED = "scim.group_replaced", Category.ADMIN
    SCIM_GROUP_PATCHED = "scim.group_patched", Category.ADMIN
    SCIM_GROUP_DELETED = "scim.group_deleted", Category.ADMIN
