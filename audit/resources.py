"""Ledger events and evidence orders as governed resources.

Events are visible to those who may search the audit trail; evidence orders to those who may
order evidence in the order's workspace (the control panel narrows them to one's own orders)."""

from audit.models import AuditEvent, EvidenceOrder
from governance.core import resources as access_resources
from governance.core.resources import Resource


def register() -> None:
    """Register the event model (called from the app's ``ready``)."""
    access_resources.register(
        Resource(
            AuditEvent,
            organization_field="organization",
            workspace_field="workspace",
            actions={"view": "audit.view"},
        )
    )
    access_resources.register(
        Resource(
            EvidenceOrder,
            organization_field="organization",
            workspace_field="workspace",
            actions={"view": "evidence.order", "add": "evidence.order"},
        )
    )
