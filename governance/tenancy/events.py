"""The event codes this app writes to the ledger (registered in its ``AppConfig.ready``)."""

from audit.events import Category, EventCode


class TenancyEvent(EventCode):
    """Tenancy: organisations, workspaces and memberships."""

    ORGANIZATION_CREATED = "organization.created", Category.ADMIN
    ORGANIZATION_UPDATED = "organization.updated", Category.ADMIN
    WORKSPACE_CREATED = "workspace.created", Category.ADMIN
    WORKSPACE_UPDATED = "workspace.updated", Category.ADMIN
    MEMBERSHIP_CREATED = "membership.created", Category.ADMIN
    MEMBERSHIP_ROLE_CHANGED = "membership.role_changed", Category.ADMIN
    MEMBERSHIP_REMOVED = "membership.removed", Category.ADMIN
