"""The officer's first row on the control panel's index: the changes waiting for my review, how
long the oldest has waited and how many are past the review SLA."""

from __future__ import annotations

from django.utils import timezone

from governance.access.decision import decide
from governance.core.posture import PosturePanel, register_panel
from workflows.changes.selectors import REVIEW_SLA, inbox_for


def review_queue(user) -> dict | None:
    """What waits for ``user``'s review; None for someone who reviews nothing and has nothing waiting."""
    waiting = list(inbox_for(user).values_list("submitted_at", flat=True)[:500])
    if not waiting and not decide(user, "workflow.approve").allowed:
        return None
    now = timezone.now()
    ages = [now - moment for moment in waiting if moment is not None]
    oldest = max(ages, default=None)
    return {
        "count": len(waiting),
        "oldest": _age(oldest) if oldest is not None else "",
        "overdue": sum(1 for age in ages if age > REVIEW_SLA),
        "sla_days": REVIEW_SLA.days,
    }


def register() -> None:
    """Register the panel (called from the app's ``admin.py``)."""
    register_panel(PosturePanel("review_queue", 5, "admin/posture/review_queue.html", review_queue))


def _age(age) -> str:
    hours = int(age.total_seconds() // 3600)
    if hours < 24:
        return f"{hours} h" if hours else "under an hour"
    days = hours // 24
    return f"{days} day{'s' if days != 1 else ''} {hours % 24} h"
