"""The ledger's posture panel: the latest signed tree head, and what awaits sealing in each scope
the reader may search (each workspace, the organisation's own events) — never the whole ledger's
activity, which would tell one organisation how busy the others are."""

from __future__ import annotations

from django.db.models import Count

from audit.models import AuditEvent, SignedTreeHead
from governance.access.decision import decide
from governance.access.queries import restrict
from governance.core.posture import PosturePanel, register_panel


def ledger_health(user) -> dict | None:
    """For those who read the ledger: the latest signed tree head, and per scope they may read
    the events awaiting sealing (one query over the small index of unsealed events)."""
    if not (decide(user, "audit.view").allowed or decide(user, "audit.view_organization").allowed):
        return None
    unsealed = (
        restrict(AuditEvent.objects.filter(sequence__isnull=True), user, "audit.view")
        .values("workspace_id", "workspace__name")
        .annotate(count=Count("id"))
        .order_by("workspace__name")
    )
    scopes = [
        {
            "name": row["workspace__name"] or "The organisation's own events",
            "unsealed": row["count"],
        }
        for row in unsealed
    ]
    return {
        "latest_head": SignedTreeHead.objects.order_by("-number").first(),
        "scopes": scopes,
        "unsealed_events": sum(scope["unsealed"] for scope in scopes),
    }


def register() -> None:
    """Register the panel (called from the app's ``admin.py``)."""
    register_panel(PosturePanel("ledger", 30, "admin/posture/ledger.html", ledger_health))
