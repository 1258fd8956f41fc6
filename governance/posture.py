"""Posture at a glance for the control panel's index: what needs attention now."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from governance.access.decision import decide
from governance.access.queries import restrict


@dataclass
class Posture:
    active_overrides: list = field(default_factory=list)
    pending_policy_changes: int | None = None
    latest_head: object = None
    unsealed_events: int | None = None
    # Service accounts of the user's workspaces: {dormant, overdue, due_soon}, or None.
    service_accounts: dict[str, int] | None = None


def posture_for(user) -> Posture:
    """Only what the user may see: overrides of their workspaces, policy changes if they govern
    policies, ledger health if they read the ledger."""
    from audit.models import AuditEvent, SignedTreeHead
    from governance.access.models import ChangeStatus, OnCallOverride, PolicyChange

    now = timezone.now()
    posture = Posture()
    overrides = restrict(OnCallOverride.objects.select_related("user", "workspace"), user, "workspace.view")
    posture.active_overrides = list(
        overrides.filter(ended_at__isnull=True, starts_at__lte=now, ends_at__gt=now)[:10]
    )
    if decide(user, "policy.view").allowed:
        posture.pending_policy_changes = restrict(
            PolicyChange.objects.filter(status=ChangeStatus.PENDING), user, "policy.view"
        ).count()
    if decide(user, "audit.view").allowed:
        posture.latest_head = SignedTreeHead.objects.order_by("-number").first()
        posture.unsealed_events = AuditEvent.objects.filter(sequence__isnull=True).count()
    posture.service_accounts = _service_accounts(user)
    return posture


def _service_accounts(user) -> dict[str, int] | None:
    """Dormant, overdue and due-soon service accounts where the user manages them."""
    from workflows.selectors import service_account_posture

    return service_account_posture(user)
