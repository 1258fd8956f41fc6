"""The ledger's posture panel: the latest signed tree head and what awaits sealing."""

from __future__ import annotations

from audit.models import AuditEvent, SignedTreeHead
from governance.access.decision import decide
from governance.core.posture import PosturePanel, register_panel


def ledger_health(user) -> dict | None:
    """For those who read the ledger: the latest signed tree head and the unsealed count."""
    if not decide(user, "audit.view").allowed:
        return None
    return {
        "latest_head": SignedTreeHead.objects.order_by("-number").first(),
        "unsealed_events": AuditEvent.objects.filter(sequence__isnull=True).count(),
    }


def register() -> None:
    """Register the panel (called from the app's ``admin.py``)."""
    register_panel(PosturePanel("ledger", 30, "admin/posture/ledger.html", ledger_health))
