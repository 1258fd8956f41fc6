"""Ledger events and evidence orders as governed resources.

Events are visible to those who may search the audit trail; evidence orders to those who may
order evidence in the order's workspace (the control panel narrows them to one's own orders).
The organisation's own events and orders (no workspace: sign-ins, accounts, SSO, SCIM) answer to
organisation-wide actions held by the organisation auditor, never to a workspace's roles."""

from audit.models import AuditEvent, EvidenceOrder, LegalHold, RetentionPolicy
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
            organization_row_actions={"audit.view": "audit.view_organization"},
        )
    )
    access_resources.register(
        Resource(
            EvidenceOrder,
            organization_field="organization",
            workspace_field="workspace",
            actions={"view": "evidence.order", "add": "evidence.order"},
            organization_row_actions={"evidence.order": "evidence.order_organization"},
        )
    )
    access_resources.register(
        Resource(
            RetentionPolicy,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "retention.view", "add": "retention.manage", "change": "retention.manage"},
        )
    )
    access_resources.register(
        Resource(
            LegalHold,
            organization_field="organization",
            workspace_field="workspace",
            actions={"view": "retention.view", "add": "retention.manage", "change": "retention.manage"},
            organization_row_actions={
                "retention.view": "retention.view_organization",
                "retention.manage": "retention.manage_organization",
            },
        )
    )
