"""The control panel's rows about runs: halts in force, approvals waiting for me, and each
workspace's runs of the last 24 hours by outcome (as bars, with the numbers beside them)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from governance.access.decision import decide
from governance.access.queries import restrict
from governance.core.posture import PosturePanel, register_panel
from workflows.executions.models import ExecutionStatus, Halt
from workflows.executions.selectors import executions_visible_to, human_tasks_for

WINDOW = timedelta(hours=24)
OUTCOMES = (
    ("succeeded", "Succeeded", Q(status=ExecutionStatus.SUCCEEDED)),
    ("failed", "Failed", Q(status=ExecutionStatus.FAILED)),
    ("halted", "Halted", Q(status=ExecutionStatus.HALTED)),
    ("waiting", "Waiting", Q(status=ExecutionStatus.WAITING)),
    ("open", "Queued or running", Q(status__in=(ExecutionStatus.QUEUED, ExecutionStatus.RUNNING))),
    ("cancelled", "Cancelled", Q(status=ExecutionStatus.CANCELLED)),
)


def runs_last_day(user) -> dict | None:
    """Per workspace the user may see runs of: the runs started in the last 24 h by outcome."""
    if not decide(user, "execution.view").allowed:
        return None
    since = timezone.now() - WINDOW
    rows = list(
        executions_visible_to(user)
        .filter(created_at__gte=since)
        .values("workspace__name")
        .annotate(total=Count("pk"), **{key: Count("pk", filter=where) for key, _, where in OUTCOMES})
        .order_by("workspace__name")[:50]
    )
    widest = max((row["total"] for row in rows), default=0)
    for row in rows:
        row["bars"] = [
            {"key": key, "label": label, "count": row[key], "percent": round(100 * row[key] / widest, 1)}
            for key, label, _ in OUTCOMES
            if row[key]
        ]
    return {"rows": rows, "outcomes": [(key, label) for key, label, _ in OUTCOMES]}


def halts_in_force(user) -> dict | None:
    """The halts in force the user may see (those who may halt); None for the others."""
    if not decide(user, "execution.halt").allowed and not decide(user, "organization.halt").allowed:
        return None
    halts = list(
        restrict(Halt.objects.select_related("workspace", "raised_by"), user, "execution.halt")
        .filter(released_at__isnull=True)
        .order_by("raised_at")[:20]
    )
    return {"halts": halts}


def approvals_waiting(user) -> dict | None:
    count = human_tasks_for(user).count()
    return {"count": count} if count else None


def register() -> None:
    """Register the panels (called from the app's ``admin.py``)."""
    register_panel(PosturePanel("halts", 3, "admin/posture/halts.html", halts_in_force))
    register_panel(
        PosturePanel("approvals_waiting", 6, "admin/posture/approvals_waiting.html", approvals_waiting)
    )
    register_panel(PosturePanel("runs_last_day", 7, "admin/posture/runs_last_day.html", runs_last_day))
