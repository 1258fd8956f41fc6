"""Reads of executions: what an actor may see, and what the sweep must (re)send."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from governance.access.queries import restrict
from workflows.executions.models import Execution, StepRun, StepStatus


def executions_visible_to(actor) -> QuerySet[Execution]:
    return restrict(
        Execution.objects.select_related("workflow", "workspace", "version"), actor, "execution.view"
    )


def step_runs_visible_to(actor) -> QuerySet[StepRun]:
    return restrict(StepRun.objects.select_related("execution"), actor, "execution.view")


def step_runs_to_dispatch(*, now: datetime, limit: int = 500) -> list[uuid.UUID]:
    """Pending rows never sent (the broker was down) or sent long ago without a claim (the message
    was lost), and running rows whose lease lapsed (the worker died): oldest first."""
    resend_before = now - timedelta(seconds=settings.EXECUTION_REDISPATCH_SECONDS)
    due = Q(due_at__isnull=True) | Q(due_at__lte=now)
    pending = (
        Q(status=StepStatus.PENDING)
        & due
        & (Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=resend_before))
    )
    lapsed = Q(status=StepStatus.RUNNING, lease_until__lte=now)
    return list(
        StepRun.objects.filter(pending | lapsed).order_by("created_at").values_list("pk", flat=True)[:limit]
    )
