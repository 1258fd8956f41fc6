"""Reads of executions: what an actor may see, what the sweep must (re)send, and what is halted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from audit.models import AuditEvent
from governance.access.queries import restrict
from governance.tenancy.models import Membership
from workflows.changes.models import Workflow, WorkflowStatus
from workflows.events import WorkflowEvent
from workflows.executions.models import (
    Execution,
    ExecutionStatus,
    Halt,
    HaltScope,
    HumanTask,
    HumanTaskStatus,
    StepRun,
    StepStatus,
)

OPEN_EXECUTION_STATES = (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING, ExecutionStatus.WAITING)


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


@dataclass(frozen=True)
class HaltInForce:
    """Why a run may not go on: its workflow's quarantine, or a halt of its workspace or organisation."""

    scope: str  # "workflow", "workspace" or "organization"
    halt_id: int | None = None

    @property
    def message(self) -> str:
        if self.scope == "workflow":
            return "The workflow is quarantined."
        where = "workspace" if self.scope == HaltScope.WORKSPACE else "whole organisation"
        return f"The {where} is halted (halt {self.halt_id})."

    def as_data(self) -> dict:
        return {"scope": self.scope, **({"halt": self.halt_id} if self.halt_id else {})}


def halts_active(*, organization_id: int, workspace_id: int | None = None) -> QuerySet[Halt]:
    """The active halts over a workspace (its own and its organisation's), or over an organisation."""
    scope = Q(workspace__isnull=True)
    if workspace_id is not None:
        scope |= Q(workspace_id=workspace_id)
    return Halt.objects.filter(scope, organization_id=organization_id, released_at__isnull=True)


def halt_in_force(*, workflow_id: int, workspace_id: int, organization_id: int) -> HaltInForce | None:
    """What stops a run of this workflow now, if anything (two indexed queries)."""
    status = Workflow.objects.filter(pk=workflow_id).values_list("status", flat=True).first()
    if status == WorkflowStatus.QUARANTINED:
        return HaltInForce("workflow")
    halt = (
        halts_active(organization_id=organization_id, workspace_id=workspace_id)
        .order_by("raised_at", "pk")
        .values_list("pk", "scope")
        .first()
    )
    return HaltInForce(halt[1], halt[0]) if halt else None


# The annotations ``halt_columns`` adds, which ``halt_in_force_of`` reads.
_HALT_COLUMNS = ("halt_workflow_status", "halt_id_in_force", "halt_scope_in_force")


def halt_columns(*, workflow_id: int, workspace_id: int, organization_id: int) -> dict[str, Subquery]:
    """``halt_in_force``'s two reads as annotations of a statement the caller makes anyway (the
    engine's lock of a step run): the same indexed lookups, evaluated by that statement's snapshot,
    without round trips of their own."""
    halt = halts_active(organization_id=organization_id, workspace_id=workspace_id).order_by(
        "raised_at", "pk"
    )
    return dict(
        zip(
            _HALT_COLUMNS,
            (
                Subquery(Workflow.objects.filter(pk=workflow_id).values("status")[:1]),
                Subquery(halt.values("pk")[:1]),
                Subquery(halt.values("scope")[:1]),
            ),
            strict=True,
        )
    )


def halt_in_force_of(row) -> HaltInForce | None:
    """What ``halt_columns`` found on ``row``: the same answer as ``halt_in_force``."""
    status, halt_id, scope = (getattr(row, name) for name in _HALT_COLUMNS)
    if status == WorkflowStatus.QUARANTINED:
        return HaltInForce("workflow")
    return HaltInForce(scope, halt_id) if halt_id is not None else None


def executions_to_halt(*, now: datetime, limit: int = 1000) -> list[int]:
    """Open runs under a quarantine or an active halt with no step in flight (a step in flight
    records its result first; its run is halted when it finishes, or when its lease lapses)."""
    active = Halt.objects.filter(released_at__isnull=True)
    quarantined = Workflow.objects.filter(status=WorkflowStatus.QUARANTINED)
    if not active.exists() and not quarantined.exists():
        return []
    under = (
        Q(workspace_id__in=active.filter(scope=HaltScope.WORKSPACE).values("workspace_id"))
        | Q(
            workspace__organization_id__in=active.filter(scope=HaltScope.ORGANIZATION).values(
                "organization_id"
            )
        )
        | Q(workflow_id__in=quarantined.values("pk"))
    )
    in_flight = StepRun.objects.filter(
        execution_id=OuterRef("pk"), status=StepStatus.RUNNING, lease_until__gt=now
    )
    return list(
        Execution.objects.filter(under, status__in=OPEN_EXECUTION_STATES)
        .exclude(Exists(in_flight))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def human_tasks_for(actor) -> QuerySet:
    """The open human tasks ``actor`` may decide: of the runs they may see, those naming a role
    they hold in the task's workspace; the earliest deadline first."""
    held = Membership.objects.filter(user=actor, user__is_active=True, workspace__isnull=False).values_list(
        "workspace_id", "role_id"
    )
    mine = Q(pk__in=[])
    for workspace_id, role in held:
        mine |= Q(workspace_id=workspace_id, approver_role=role)
    return (
        restrict(HumanTask.objects.all(), actor, "execution.view")
        .filter(mine, status=HumanTaskStatus.OPEN)
        .select_related("execution__workflow", "execution__triggered_by", "workspace")
        .order_by("due_at", "pk")
    )


def human_tasks_visible_to(actor) -> QuerySet:
    return restrict(
        HumanTask.objects.select_related(
            "execution__workflow", "execution__triggered_by", "workspace", "step_run"
        ),
        actor,
        "execution.view",
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
    # The anchor's time as a subquery of the page's own query: one statement, not two.
    anchor = Subquery(queryset.filter(pk=execution_id).values("created_at")[:1])
    return queryset.filter(Q(created_at__lt=anchor) | Q(created_at=anchor, pk__lt=execution_id))


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
