"""The access app's posture panels: on-call overrides in force, policy changes waiting."""

from __future__ import annotations

from django.utils import timezone

from governance.access.decision import decide
from governance.access.models import ChangeStatus, OnCallOverride, PolicyChange
from governance.access.queries import restrict
from governance.core.posture import PosturePanel, register_panel


def active_overrides(user) -> list[OnCallOverride]:
    """Overrides in force now in the workspaces the user may see (at most ten)."""
    now = timezone.now()
    overrides = restrict(OnCallOverride.objects.select_related("user", "workspace"), user, "workspace.view")
    return list(overrides.filter(ended_at__isnull=True, starts_at__lte=now, ends_at__gt=now)[:10])


def pending_policy_changes(user) -> int | None:
    """How many policy changes wait for a decision, for those who govern policies."""
    if not decide(user, "policy.view").allowed:
        return None
    return restrict(PolicyChange.objects.filter(status=ChangeStatus.PENDING), user, "policy.view").count()


def register() -> None:
    """Register the panels (called from the app's ``admin.py``)."""
    register_panel(PosturePanel("oncall", 10, "admin/posture/oncall.html", active_overrides))
    register_panel(
        PosturePanel("policy_changes", 20, "admin/posture/policy_changes.html", pending_policy_changes)
    )
