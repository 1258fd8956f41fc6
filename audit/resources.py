"""Ledger events as a governed resource: visible to those who may search the audit trail."""

from governance.access import resources as access_resources
from governance.access.resources import Resource


def register() -> None:
    """Register the event model (called from the app's ``ready``)."""
    from audit.models import AuditEvent

    access_resources.register(
        Resource(
            AuditEvent,
            organization_field="organization",
            workspace_field="workspace",
            actions={"view": "audit.view"},
        )
    )
