"""The event codes the ledger accepts. A code not listed here is refused at the service boundary."""

from __future__ import annotations

from django.db import models


class Category(models.TextChoices):
    ADMIN = "admin", "Administration"
    WORKFLOW_LIFECYCLE = "workflow_lifecycle", "Workflow lifecycle"
    EXECUTION = "execution", "Execution"
    AUTHENTICATION = "authentication", "Authentication"
    ACCESS = "access", "Access"
    SYSTEM = "system", "System"


EVENT_CATEGORIES: dict[str, Category] = {
    "organization.created": Category.ADMIN,
    "organization.updated": Category.ADMIN,
    "workspace.created": Category.ADMIN,
    "workspace.updated": Category.ADMIN,
    "user.created": Category.ADMIN,
    "user.updated": Category.ADMIN,
    "user.deactivated": Category.ADMIN,
    "user.reactivated": Category.ADMIN,
    "user.password_set": Category.ADMIN,
    "membership.created": Category.ADMIN,
    "membership.role_changed": Category.ADMIN,
    "membership.removed": Category.ADMIN,
    "grant.assigned": Category.ADMIN,
    "grant.revoked": Category.ADMIN,
    "api_token.created": Category.AUTHENTICATION,
    "access.denied": Category.ACCESS,
    # Sign-in (docs/identity.md): success, failure with its reason, lockouts and their lifting.
    "login.succeeded": Category.AUTHENTICATION,
    "login.failed": Category.AUTHENTICATION,
    "login.locked_out": Category.AUTHENTICATION,
    "login.unlocked": Category.ADMIN,
    # Older names of login.succeeded and login.failed: still accepted so that older rows read alike.
    "auth.login": Category.AUTHENTICATION,
    "auth.login_failed": Category.AUTHENTICATION,
    # Conditional access: each decision with its score and reasons; the per-organisation rules.
    "access.conditional_decision": Category.ACCESS,
    "conditional_access.policy_created": Category.ADMIN,
    "conditional_access.policy_updated": Category.ADMIN,
    "auth.logout": Category.AUTHENTICATION,
    "session.started": Category.AUTHENTICATION,
    "session.ended": Category.AUTHENTICATION,
    "session.forced_end": Category.AUTHENTICATION,
    "mfa.enrolled": Category.AUTHENTICATION,
    "mfa.verified": Category.AUTHENTICATION,
    "mfa.failed": Category.AUTHENTICATION,
    "mfa.backup_codes_generated": Category.AUTHENTICATION,
    "mfa.backup_code_used": Category.AUTHENTICATION,
    "mfa.device_removed": Category.AUTHENTICATION,
    "mfa.reset": Category.AUTHENTICATION,
    "sso.login": Category.AUTHENTICATION,
    "sso.login_failed": Category.AUTHENTICATION,
    "sso.user_provisioned": Category.ADMIN,
    "sso.account_linked": Category.ADMIN,
    "identity_provider.created": Category.ADMIN,
    "identity_provider.updated": Category.ADMIN,
    "identity_provider.mapping_created": Category.ADMIN,
    "identity_provider.mapping_deleted": Category.ADMIN,
    "sign_in_policy.changed": Category.ADMIN,
    "db.row_changed": Category.SYSTEM,
    "ledger.verified": Category.SYSTEM,
    "policy.change_proposed": Category.ADMIN,
    "policy.change_approved": Category.ADMIN,
    "policy.change_rejected": Category.ADMIN,
    "oncall.activated": Category.ACCESS,
    "oncall.ended": Category.ACCESS,
    "integration.created": Category.ADMIN,
    "integration.requested": Category.ADMIN,
    "integration.request.approved": Category.ADMIN,
    "integration.request.rejected": Category.ADMIN,
    "workflow.created": Category.WORKFLOW_LIFECYCLE,
    "workflow.version.created": Category.WORKFLOW_LIFECYCLE,
    "workflow.change.submitted": Category.WORKFLOW_LIFECYCLE,
    "workflow.change.withdrawn": Category.WORKFLOW_LIFECYCLE,
    "workflow.change.superseded": Category.WORKFLOW_LIFECYCLE,
    "workflow.change.approved": Category.WORKFLOW_LIFECYCLE,
    "workflow.change.rejected": Category.WORKFLOW_LIFECYCLE,
    "workflow.change.applied": Category.WORKFLOW_LIFECYCLE,
    "workflow.activated": Category.WORKFLOW_LIFECYCLE,
    "workflow.deactivated": Category.WORKFLOW_LIFECYCLE,
    # Keys and encryption.
    "key.created": Category.SYSTEM,
    "key.rotated": Category.SYSTEM,
    "key.byok_configured": Category.ADMIN,
    "data_key.created": Category.SYSTEM,
    "data_key.rotation_started": Category.SYSTEM,
    "data_key.rotation_completed": Category.SYSTEM,
    "data_key.destroyed": Category.SYSTEM,
    "crypto.decrypt_failed": Category.SYSTEM,
    # Credentials (values never in the ledger: fingerprints only).
    "credential.created": Category.ADMIN,
    "credential.version_staged": Category.ADMIN,
    "credential.version_tested": Category.ADMIN,
    "credential.version_promoted": Category.ADMIN,
    "credential.version_revoked": Category.ADMIN,
    "credential.rotation_required": Category.ADMIN,
    "credential.runbook_started": Category.ADMIN,
    "credential.runbook_completed": Category.ADMIN,
    # Connectors, integrations and the network boundary.
    "connector.created": Category.ADMIN,
    "connector.vetted": Category.ADMIN,
    "integration.updated": Category.ADMIN,
    "integration.outbound_refused": Category.ACCESS,
    "network.allow_rule_created": Category.ADMIN,
    "network.allow_rule_removed": Category.ADMIN,
    # Service accounts.
    "service_account.created": Category.ADMIN,
    "service_account.token_issued": Category.AUTHENTICATION,
    "service_account.token_revoked": Category.AUTHENTICATION,
    "service_account.authenticated": Category.AUTHENTICATION,
    "service_account.authentication_failed": Category.AUTHENTICATION,
    "service_account.used": Category.ACCESS,
    "service_account.rotation_warning": Category.SYSTEM,
    "service_account.disabled": Category.ADMIN,
    "service_account.reactivated": Category.ADMIN,
    # SCIM provisioning (see docs/identity.md): tokens, refused calls, every change applied.
    "scim.token_created": Category.ADMIN,
    "scim.token_revoked": Category.ADMIN,
    "scim.auth_failed": Category.AUTHENTICATION,
    "scim.user_created": Category.ADMIN,
    "scim.user_replaced": Category.ADMIN,
    "scim.user_patched": Category.ADMIN,
    "scim.user_deactivated": Category.ADMIN,
    "scim.user_deleted": Category.ADMIN,
    "scim.group_created": Category.ADMIN,
    "scim.group_replaced": Category.ADMIN,
    "scim.group_patched": Category.ADMIN,
    "scim.group_deleted": Category.ADMIN,
    # Evidence packages (see docs/evidence.md).
    "evidence.package_built": Category.ACCESS,
    "evidence.ordered": Category.ACCESS,
    "evidence.order_started": Category.SYSTEM,
    "evidence.order_ready": Category.SYSTEM,
    "evidence.order_failed": Category.SYSTEM,
    "evidence.order_expired": Category.SYSTEM,
    "evidence.downloaded": Category.ACCESS,
    "evidence.download_denied": Category.ACCESS,
}


def category_of(code: str) -> Category | None:
    """Return the category of a known event code, or None."""
    return EVENT_CATEGORIES.get(code)
