"""Reads of executions: what an actor may see, and what the sweep must (re)send."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from audit.models import AuditEvent
from governance.access.queries import restrict
from workflows.changes.models import Workflow
from workflows.events import WorkflowEvent
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


# --- Runs as people and API clients read them ----------------------------------------------------

# The ledger events that record a person stepping into a run (cancel, and retry and resume once
# they exist): every ``operator.*`` code of the app.
INTERVENTIONS = tuple(code for code in WorkflowEvent if code.startswith("operator."))


def workflows_with_visible_runs(actor) -> QuerySet[Workflow]:
    """The workflows whose runs ``actor`` may see (``execution.view`` in their workspace)."""
    return restrict(Workflow.objects.select_related("workspace", "active_version"), actor, "execution.view")


def workflow_for_runs(actor, workflow_id: int) -> Workflow | None:
    """The workflow whose runs ``actor`` may see or start, or None (missing and not yours answer
    alike). A service account that may only trigger sees its own workspace's workflows here."""
    base = Workflow.objects.select_related("workspace", "active_version")
    for action in ("execution.view", "execution.trigger"):
        found = restrict(base, actor, action).filter(pk=workflow_id).first()
        if found is not None:
            return found
    return None


def executions_filtered(
    queryset: QuerySet[Execution],
    *,
    workflow_id: int | None = None,
    status: str | None = None,
    trigger_kind: str | None = None,
) -> QuerySet[Execution]:
    """``queryset`` narrowed by the list filters that are given."""
    if workflow_id is not None:
        queryset = queryset.filter(workflow_id=workflow_id)
    if status:
        queryset = queryset.filter(status=status)
    if trigger_kind:
        queryset = queryset.filter(trigger_kind=trigger_kind)
    return queryset


def executions_before(queryset: QuerySet[Execution], execution_id: int) -> QuerySet[Execution]:
    """The runs of ``queryset`` older than run ``execution_id`` in the newest-first order
    (``-created_at, -id``): a keyset page that a workflow's runs index serves. An unknown id
    gives no rows."""
    anchor = queryset.filter(pk=execution_id).values("created_at").first()
    if anchor is None:
        return queryset.none()
    return queryset.filter(
        Q(created_at__lt=anchor["created_at"]) | Q(created_at=anchor["created_at"], pk__lt=execution_id)
    )


def step_runs_in_order() -> QuerySet[StepRun]:
    """A run's step attempts in the order they were queued (for a prefetch)."""
    return StepRun.objects.order_by("created_at", "attempt")


def execution_interventions(execution: Execution) -> list[dict]:
    """Who stepped into the run and why (cancelled, retried, resumed), oldest first, from the ledger."""
    events = AuditEvent.objects.filter(
        workspace_id=execution.workspace_id,
        action__in=INTERVENTIONS,
        target_type=Execution._meta.label_lower,
        target_id=str(execution.pk),
    ).order_by("id")
    return [
        {
            "action": event.action,
            "actor": event.actor_label,
            "reason": (event.data or {}).get("reason", ""),
            "at": event.occurred_at,
        }
        for event in events
    ]
