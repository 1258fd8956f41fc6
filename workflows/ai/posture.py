"""The AI register's row of the control panel's posture table: models by status, providers and
models whose review is due within 30 days or overdue (an overdue entry is refused), and the
register changes waiting for a second officer."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from governance.access.decision import decide
from governance.core.posture import PosturePanel, register_panel
from workflows.ai.models import ModelStatus, RegisterChange, RegisterChangeStatus
from workflows.ai.selectors import (
    models_visible_to,
    providers_visible_to,
    review_due_on,
    review_overdue,
)

SOON = timedelta(days=30)
MAX_LISTED = 10


def ai_register_posture(user) -> dict | None:
    """For those who may read the register: models by status and the reviews due (None otherwise)."""
    if not decide(user, "ai_register.view").allowed:
        return None
    today = timezone.now().date()
    models = models_visible_to(user).filter(provider__organization_id=user.organization_id)
    counts = dict(models.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    by_status = [(label, counts.get(value, 0), value) for value, label in ModelStatus.choices]
    due = []
    entries = [*providers_visible_to(user).filter(organization_id=user.organization_id), *models]
    for entry in entries:
        when = review_due_on(entry)
        if when is None or when <= today + SOON:
            due.append(
                {
                    "entry": entry,
                    "kind": entry._meta.verbose_name,
                    "due": when,
                    "overdue": review_overdue(entry, today),
                }
            )
    due.sort(key=lambda row: (row["due"] is not None, row["due"] or today))
    waiting = RegisterChange.objects.filter(
        organization_id=user.organization_id, status=RegisterChangeStatus.PENDING
    ).count()
    return {"by_status": by_status, "due": due[:MAX_LISTED], "due_count": len(due), "waiting": waiting}


def register() -> None:
    """Register the panel (called from the register's ``admin.py``)."""
    register_panel(PosturePanel("ai_register", 25, "admin/posture/ai_register.html", ai_register_posture))
