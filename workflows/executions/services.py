"""Every write of the execution engine: trigger, claim, finish, cancel, retry, resume, halt.

Each function runs in one transaction, moves rows it locked along the tables of
``transitions``, and records its ledger events in that same transaction. Locks are always
taken execution first, then its step run, so the engine and an operator never deadlock. A step
that becomes runnable is dispatched to the workers only after its transaction commits.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache, partial
from typing import Any

import rfc8785
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, Subquery
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_record, audit_events_record, audited_transaction
from governance.access.decision import require
from governance.core.prepared import PreparedQuery
from governance.core.redaction import redact_data, redact_text
from governance.core.text import checked_reason, json_refusal
from governance.tenancy.models import Membership
from workflows.ai.selectors import ai_model_verdict
from workflows.changes.definition import input_problems
from workflows.changes.models import ChangeRequest, ChangeState, Workflow, WorkflowStatus, WorkflowVersion
from workflows.credentials.selectors import integration_credential_current
from workflows.events import WorkflowEvent
from workflows.executions.ai_output import check_output, strict_json
from workflows.executions.ai_records import ai_call_record, text_mac
from workflows.executions.models import (
    Execution,
    ExecutionStatus,
    HumanTask,
    HumanTaskKind,
    HumanTaskStatus,
    StepRun,
    StepStatus,
    TriggerKind,
)
from workflows.executions.selectors import (
    OPEN_EXECUTION_STATES,
    HaltInForce,
    halt_columns,
    halt_in_force,
    halt_in_force_of,
)
from workflows.executions.steps.base import StepEnv, StepOutcome
from workflows.executions.transitions import FINISHED_EXECUTION_STATES, execution_move, step_move
from workflows.integrations.selectors import integrations_by_slug
from workflows.service_accounts.models import ServiceAccount

logger = logging.getLogger(__name__)

MAX_INPUT_BYTES = 64 * 1024
MAX_OUTPUT_BYTES = 64 * 1024
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one step run: only the holder of ``token`` may finish it."""

    step_run_id: uuid.UUID
    execution_id: int
    token: str
    step: dict
    attempt: int
    context: dict = field(default_factory=dict)
    env: StepEnv | None = None


class TriggerHaltedError(ValidationError):
    """A trigger refused because a halt or a quarantine is in force (the API answers 423)."""


def _digest(value: Any) -> str:
    return hashlib.sha256(rfc8785.dumps(value)).hexdigest()


def _sealable(value: Any) -> tuple[str, str]:
    """The redacted JSON text of ``value`` and its digest (what the row and the ledger keep)."""
    redacted = redact_data(value)
    return json.dumps(redacted), _digest(redacted)


def _where(execution: Execution) -> dict[str, int]:
    return {"organization_id": execution.workspace.organization_id, "workspace_id": execution.workspace_id}


def _record(events: list[dict] | None, **event) -> None:
    """Record a ledger event now, or add it to ``events``, which the caller records with the
    others of its transaction in one INSERT (``_flush``)."""
    if events is None:
        audit_event_record(**event)
    else:
        events.append(event)


def _flush(events: list[dict]) -> None:
    """Record the events collected so far, in order, in one INSERT."""
    if events:
        audit_events_record(events)
        events.clear()


MAX_INPUT_DEPTH = 64
# Idempotency keys the engine gives its own triggers: nobody else may use them (a manual run with
# a slot's key would take the scheduled run's place).
RESERVED_KEY_PREFIXES = {"schedule:": TriggerKind.SCHEDULE, "webhook:": TriggerKind.WEBHOOK}


def _depth(value: Any) -> int:
    """How deep ``value`` nests (containers), counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_INPUT_DEPTH:
                return depth
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _checked_input(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise ValidationError({"input": "The input must be a JSON object."})
    if _depth(payload) > MAX_INPUT_DEPTH:
        raise ValidationError({"input": f"The input nests more than {MAX_INPUT_DEPTH} levels deep."})
    refusal = json_refusal(payload)
    if refusal:
        path, reason = refusal
        raise ValidationError({"input": f"{path}: {reason}" if path else reason})
    try:
        size = len(rfc8785.dumps(payload))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError):
        raise ValidationError(
            {"input": "The input holds values that JSON cannot represent exactly, or nests too deep."}
        ) from None
    if size > MAX_INPUT_BYTES:
        raise ValidationError({"input": f"The input is {size:,} bytes; the limit is {MAX_INPUT_BYTES:,}."})
    return payload


def _runnable_version(workflow: Workflow, version: WorkflowVersion | None) -> WorkflowVersion:
    """The workflow's active, approved version — the only one that may run — or a clear refusal."""
    if workflow.status == WorkflowStatus.QUARANTINED:
        raise ValidationError(
            {"workflow": f"{workflow} is quarantined: no new executions until it is released."}
        )
    if workflow.status != WorkflowStatus.ACTIVE or workflow.active_version_id is None:
        raise ValidationError(
            {"workflow": f"{workflow} is {workflow.get_status_display().lower()}: only active workflows run."}
        )
    active = workflow.active_version
    if version is not None and version.pk != active.pk:
        raise ValidationError(
            {
                "version": f"Version {version.number} is not the active version (v{active.number}); only that one runs."
            }
        )
    if not ChangeRequest.objects.filter(version=active, state=ChangeState.APPLIED).exists():
        raise ValidationError({"version": f"Version {active.number} was never approved; it cannot run."})
    return active


def execution_trigger(
    *,
    actor,
    workflow: Workflow,
    input: dict,  # the name the API and the docs use
    idempotency_key: str | None = None,
    kind: str = TriggerKind.MANUAL,
    version: WorkflowVersion | None = None,
) -> Execution:
    """Start a run of ``workflow``'s active, approved version with ``input``.

    The actor needs ``execution.trigger`` on the workflow (the decision point, with the policies);
    an inactive or quarantined workflow is refused. A repeated ``idempotency_key`` returns the run
    it started before, recording nothing new. The first step is queued and dispatched on commit.
    """
    if kind not in TriggerKind.values:
        raise ValidationError(
            {"kind": f"Unknown trigger kind {kind!r}; use one of {', '.join(TriggerKind.values)}."}
        )
    payload = _checked_input(input)
    key = (idempotency_key or "").strip()
    if len(key) > 200:
        raise ValidationError({"idempotency_key": "At most 200 characters."})
    if key and json_refusal(key):
        raise ValidationError({"idempotency_key": json_refusal(key)[1]})
    for prefix, owner in RESERVED_KEY_PREFIXES.items():
        if key.startswith(prefix) and kind != owner:
            raise ValidationError({"idempotency_key": f"Keys starting with {prefix!r} are the engine's own."})
    with audited_transaction():
        workflow = (
            Workflow.objects.select_for_update(of=("self",))
            .select_related("workspace", "active_version")
            .get(pk=workflow.pk)
        )
        require(actor, "execution.trigger", workflow, fresh=True)
        if key:
            earlier = Execution.objects.filter(workflow=workflow, idempotency_key=key).first()
            if earlier is not None:
                return earlier
        halt = _halt_of(workflow)
        if halt is not None:
            # The refusal is recorded and committed; it is raised once the transaction is closed.
            audit_event_record(
                action=WorkflowEvent.EXECUTION_REFUSED,
                actor=actor,
                target=workflow,
                organization_id=workflow.workspace.organization_id,
                workspace_id=workflow.workspace_id,
                data={"kind": kind, **halt.as_data()},
            )
        else:
            execution = _execution_start(actor, workflow, version, payload, key, kind)
    if halt is not None:
        raise TriggerHaltedError({"workflow": f"{halt.message} No new executions until it is released."})
    return execution


def _execution_start(actor, workflow: Workflow, version, payload: dict, key: str, kind: str) -> Execution:
    pinned = _runnable_version(workflow, version)
    problems = input_problems(pinned.definition.get("input_schema"), payload)
    if problems:
        raise ValidationError({"input": problems})
    redacted_input = redact_data(payload)
    execution = Execution.objects.create(
        workspace=workflow.workspace,
        workflow=workflow,
        version=pinned,
        trigger_kind=kind,
        trigger_source=f"{kind}:{getattr(actor, 'email', '') or getattr(actor, 'label', '') or 'system'}"[
            :200
        ],
        triggered_by=actor if isinstance(actor, get_user_model()) else None,
        idempotency_key=key,
        input_digest=_digest(redacted_input),
    )
    audit_event_record(
        action=WorkflowEvent.EXECUTION_TRIGGERED,
        actor=actor,
        target=execution,
        **_where(execution),
        data={
            "workflow": workflow.pk,
            "kind": kind,
            "source": execution.trigger_source,
            "version": pinned.number,
            "content_hash": pinned.content_hash,
            "input_digest": execution.input_digest,
            "idempotency_key": bool(key),
        },
    )
    first = pinned.definition["steps"][0]
    _queue_step(execution, first, {"input": redacted_input, "steps": {}, "prev": None}, actor=actor)
    return execution


def _halt_of(workflow: Workflow) -> HaltInForce | None:
    """What stops runs of ``workflow`` now (its workspace loaded), if anything."""
    return halt_in_force(
        workflow_id=workflow.pk,
        workspace_id=workflow.workspace_id,
        organization_id=workflow.workspace.organization_id,
    )


def _halt_for(execution: Execution) -> HaltInForce | None:
    """The same for a run (its workspace loaded; its workflow need not be)."""
    return halt_in_force(
        workflow_id=execution.workflow_id,
        workspace_id=execution.workspace_id,
        organization_id=execution.workspace.organization_id,
    )


def retry_delay(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: exponential from ``EXECUTION_RETRY_BASE_SECONDS``,
    capped at ``EXECUTION_RETRY_MAX_SECONDS``, with full jitter in its upper half."""
    ceiling = min(
        settings.EXECUTION_RETRY_MAX_SECONDS, settings.EXECUTION_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    )
    return ceiling / 2 + secrets.SystemRandom().uniform(0, ceiling / 2)


def _queue_step(
    execution: Execution,
    step: dict,
    context: dict,
    *,
    actor=None,
    attempt: int = 1,
    due_at=None,
    events: list[dict] | None = None,
) -> StepRun:
    """Insert the pending row of a step (a retry: with the time it is due) and send it after commit;
    a retry is sent by the sweep once it is due, never as a countdown held by the broker. Its event
    is recorded now, or added to ``events`` (``_record``)."""
    text, digest = _sealable(context)
    run = StepRun(
        execution=execution,
        workspace_id=execution.workspace_id,
        step_id=step["id"],
        step_type=step["type"],
        attempt=attempt,
        inputs=text,
        inputs_digest=digest,
        due_at=due_at,
        # Sent when this transaction commits (``_dispatch`` unmarks it if the broker refuses).
        dispatched_at=timezone.now() if due_at is None else None,
    )
    run.save()
    _record(
        events,
        action=WorkflowEvent.STEP_RETRY_SCHEDULED if due_at else WorkflowEvent.STEP_QUEUED,
        actor=actor,
        target=run,
        **_where(execution),
        data={
            "execution": execution.pk,
            "step": run.step_id,
            "type": run.step_type,
            "attempt": attempt,
            **({"due_at": due_at} if due_at else {}),
        },
    )
    if due_at is None:
        transaction.on_commit(partial(_dispatch, run.pk))
    return run


def _dispatch(step_run_id: uuid.UUID) -> None:
    # Tasks sit above services (they call them); a service only starts one once it has committed.
    from workflows.executions.tasks import step_run_execute

    try:
        step_run_execute.delay(str(step_run_id))
    except Exception:  # a broker that is down must not undo a committed trigger
        logger.warning(
            "Step run %s not dispatched (broker unavailable); the sweep will send it.", step_run_id
        )
        # The row was written as sent (one commit less per step); unmark it for the sweep.
        StepRun.objects.filter(pk=step_run_id).update(dispatched_at=None)


def step_run_mark_dispatched(*, step_run_id: uuid.UUID) -> None:
    """Note that a message for the row went to the broker. Delivery bookkeeping, not state: the
    column is left out of the capture, and no ledger event is written for it."""
    StepRun.objects.filter(pk=step_run_id).update(dispatched_at=timezone.now())


def _step_of(version: WorkflowVersion, step_id: str) -> dict:
    """A copy of the step (a definition may be shared by every run of its version in this process)."""
    return copy.deepcopy(next(step for step in version.definition["steps"] if step["id"] == step_id))


def _finish_execution(
    execution: Execution, name: str, *, actor=None, data: dict | None = None, events: list[dict] | None = None
) -> None:
    execution_move(execution, name)
    execution.finished_at = timezone.now()
    execution.save(update_fields=["status", "finished_at"])
    _record(
        events,
        action=WorkflowEvent.EXECUTION_FINISHED,
        actor=actor,
        target=execution,
        **_where(execution),
        data={"status": execution.status, **(data or {})},
    )


def _end_step(run: StepRun, name: str, *, error_class: str, message: str) -> None:
    step_move(run, name)
    run.finished_at = timezone.now()
    run.lease_until = None
    run.error_class = error_class
    run.error_message = message
    run.save(
        update_fields=["status", "finished_at", "lease_until", "error_class", "error_message", "deliveries"]
    )


def _halt_execution(execution: Execution, halt: HaltInForce) -> None:
    _halt_executions([(execution, halt)], now=timezone.now())


def _halt_executions(stopping: list[tuple[Execution, HaltInForce]], *, now) -> None:
    """Stop runs (locked by the caller), each under its halt: every step not in flight ends
    ``halted`` (a row whose lease lapsed too: its worker is gone), then the run. The halted rows
    are where ``execution_resume`` starts again. Rows are written in one statement per table; each
    keeps its own ledger event."""
    by_id = {execution.pk: (execution, halt) for execution, halt in stopping}
    runs = list(
        StepRun.objects.select_for_update()
        .filter(execution_id__in=by_id)
        .filter(
            Q(status__in=(StepStatus.PENDING, StepStatus.WAITING))
            | Q(status=StepStatus.RUNNING, lease_until__lte=now)
        )
        .order_by("execution_id", "created_at")
    )
    steps: dict[int, list[str]] = {pk: [] for pk in by_id}
    by_message: dict[str, list] = {}
    for run in runs:
        halt = by_id[run.execution_id][1]
        step_move(run, "halt")  # each row's move is checked; the rows are then written together
        run.finished_at, run.lease_until = now, None
        run.error_class, run.error_message = "Halted", halt.message
        steps[run.execution_id].append(run.step_id)
        by_message.setdefault(halt.message, []).append(run.pk)
    for message, pks in by_message.items():
        StepRun.objects.filter(pk__in=pks).update(
            status=StepStatus.HALTED,
            finished_at=now,
            lease_until=None,
            error_class="Halted",
            error_message=message,
        )
    for execution, _ in stopping:
        execution_move(execution, "halt")
        execution.finished_at = now
    Execution.objects.filter(pk__in=by_id).update(status=ExecutionStatus.HALTED, finished_at=now)
    frozen = list(
        HumanTask.objects.select_for_update()
        .filter(step_run_id__in=[run.pk for run in runs], status=HumanTaskStatus.OPEN)
        .order_by("pk")
    )
    HumanTask.objects.filter(pk__in=[task.pk for task in frozen]).update(status=HumanTaskStatus.HALTED)
    audit_events_record(
        [
            {
                "action": WorkflowEvent.STEP_HALTED,
                "actor": None,
                "target": run,
                **_where(by_id[run.execution_id][0]),
                "data": {
                    "execution": run.execution_id,
                    "step": run.step_id,
                    **by_id[run.execution_id][1].as_data(),
                },
            }
            for run in runs
        ]
        + [
            {
                "action": WorkflowEvent.EXECUTION_HALTED,
                "actor": None,
                "target": execution,
                **_where(execution),
                "data": {"steps": sorted(steps[execution.pk]), "reason": halt.message, **halt.as_data()},
            }
            for execution, halt in stopping
        ]
        + [
            {
                "action": WorkflowEvent.HUMAN_TASK_CLOSED,
                "actor": None,
                "target": task,
                **_where(by_id[task.execution_id][0]),
                "data": {
                    "execution": task.execution_id,
                    "step": task.step_id,
                    "status": HumanTaskStatus.HALTED,
                },
            }
            for task in frozen
        ]
    )


def executions_halt_enforce(*, execution_ids: list[int]) -> int:
    """Halt the open runs among ``execution_ids`` that a halt or quarantine covers and that have no
    step in flight, in one transaction; return how many. Runs a worker holds are skipped (its
    claim or finish checks the halt itself), as are runs with a step in flight (halted when it
    ends). Called by the ``halts_enforce`` task."""
    now = timezone.now()
    with audited_transaction():
        executions = list(
            Execution.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("workspace", "workflow")
            .filter(pk__in=execution_ids, status__in=OPEN_EXECUTION_STATES)
            .order_by("pk")
        )
        busy = set(
            StepRun.objects.filter(
                execution_id__in=[execution.pk for execution in executions],
                status=StepStatus.RUNNING,
                lease_until__gt=now,
            ).values_list("execution_id", flat=True)
        )
        verdicts: dict[tuple[int, int], HaltInForce | None] = {}
        stopping = []
        for execution in executions:
            if execution.pk in busy:
                continue
            key = (execution.workflow_id, execution.workspace_id)
            if key not in verdicts:
                verdicts[key] = _halt_for(execution)
            if verdicts[key] is not None:
                stopping.append((execution, verdicts[key]))
        if stopping:
            _halt_executions(stopping, now=now)
    return len(stopping)


def _only(queryset):
    """The one row ``queryset`` selects, or None (no ORDER BY: it names a row by its key)."""
    rows = list(queryset.order_by()[:1])
    return rows[0] if rows else None


@lru_cache(maxsize=256)
def _definition(content_hash: str, version_id: int) -> dict:
    """The definition of a version, read once per process. Versions are immutable (a database
    trigger refuses UPDATE and DELETE), and the key holds the hash of the definition too, so a
    cached copy is never stale; callers get copies of its steps (``_step_of``)."""
    return WorkflowVersion.objects.values_list("definition", flat=True).get(pk=version_id)


def _run_of_step(step_run_id):
    # The run's row, found and locked in one statement. A step run never moves to another
    # execution, so the subquery cannot go stale.
    return (
        Execution.objects.select_for_update(of=("self",))
        .select_related("workspace", "workflow", "version")
        .defer("version__definition")
        .filter(pk=Subquery(StepRun.objects.filter(pk=step_run_id).values("execution_id")[:1]))
        .order_by()[:1]
    )


def _step_with_halts(*, skip_locked: bool):
    def build(step_run_id, workflow_id, workspace_id, organization_id):
        return (
            StepRun.objects.select_for_update(skip_locked=skip_locked)
            .filter(pk=step_run_id)
            .annotate(
                **halt_columns(
                    workflow_id=workflow_id, workspace_id=workspace_id, organization_id=organization_id
                )
            )
            .order_by()[:1]
        )

    return PreparedQuery(build, step_run_id=uuid.UUID, workflow_id=int, workspace_id=int, organization_id=int)


# The engine's two locks per claim and per finish, compiled once per process (governance.core.prepared).
_LOCK_RUN = PreparedQuery(_run_of_step, step_run_id=uuid.UUID)
_LOCK_STEP = {skip_locked: _step_with_halts(skip_locked=skip_locked) for skip_locked in (True, False)}


def _lock(
    step_run_id, *, skip_locked: bool, halts: bool = False
) -> tuple[Execution | None, StepRun | None, HaltInForce | None]:
    """Lock a step run's execution, then the step run (the lock order of every service), in two
    statements; with ``halts``, the second also reads what halts the run (``halt_columns``): a
    snapshot taken after the run's lock, as the claim's check requires."""
    step_run_id = uuid.UUID(str(step_run_id))
    execution = next(iter(_LOCK_RUN.run(step_run_id=step_run_id)), None)
    if execution is None:
        return None, None, None
    version = execution.version
    version.definition = _definition(version.content_hash, version.pk)
    if halts:
        run = next(
            iter(
                _LOCK_STEP[skip_locked].run(
                    step_run_id=step_run_id,
                    workflow_id=execution.workflow_id,
                    workspace_id=execution.workspace_id,
                    organization_id=execution.workspace.organization_id,
                )
            ),
            None,
        )
        return execution, run, (halt_in_force_of(run) if run is not None else None)
    run = _only(StepRun.objects.select_for_update(skip_locked=skip_locked).filter(pk=step_run_id))
    return execution, run, None


def step_run_claim(*, step_run_id: uuid.UUID) -> Claim | None:
    """Claim a step run for this worker, or None when there is nothing to do.

    Nothing to do: another worker holds it, it is not due, it already finished (a duplicate
    delivery), it was delivered more than ``EXECUTION_MAX_DELIVERIES`` times (it becomes
    ``poisoned`` and the run fails), its run was cancelled or finished (it is cancelled), or its
    workflow is quarantined (it ends ``halted``, and so does the run). Those checks come after
    the claim's lock and before any I/O.
    """
    with audited_transaction():
        execution, run, halt = _lock(step_run_id, skip_locked=True, halts=True)
        if run is None:
            return None
        now = timezone.now()
        due = run.status == StepStatus.PENDING and (run.due_at is None or run.due_at <= now)
        lapsed = run.status == StepStatus.RUNNING and run.lease_until is not None and run.lease_until <= now
        if not (due or lapsed):
            return None
        where = _where(execution)
        run.deliveries += 1
        if run.deliveries > settings.EXECUTION_MAX_DELIVERIES:
            _end_step(
                run,
                "poison",
                error_class="Poisoned",
                message=f"Delivered {run.deliveries} times without finishing; the limit is "
                f"{settings.EXECUTION_MAX_DELIVERIES}.",
            )
            audit_event_record(
                action=WorkflowEvent.STEP_POISONED,
                actor=None,
                target=run,
                **where,
                data={"execution": execution.pk, "step": run.step_id, "deliveries": run.deliveries},
            )
            if execution.status not in FINISHED_EXECUTION_STATES:
                _finish_execution(execution, "fail", data={"step": run.step_id, "error_class": "Poisoned"})
            return None
        if execution.status in FINISHED_EXECUTION_STATES:
            _end_step(
                run,
                "cancel",
                error_class="Cancelled",
                message=f"The execution is {execution.get_status_display().lower()}.",
            )
            audit_event_record(
                action=WorkflowEvent.STEP_CANCELLED,
                actor=None,
                target=run,
                **where,
                data={"execution": execution.pk, "step": run.step_id, "execution_status": execution.status},
            )
            return None
        if halt is not None:
            _halt_execution(execution, halt)
            return None
        previous = step_move(run, "claim")
        step = _step_of(execution.version, run.step_id)
        if run.started_at is None:
            run.started_at = now
            run.pins = _pins(execution, step)
        run.claim_token = uuid.uuid4().hex
        run.lease_until = now + timedelta(seconds=settings.EXECUTION_LEASE_SECONDS)
        run.save(update_fields=["status", "claim_token", "lease_until", "started_at", "pins", "deliveries"])
        events: list[dict] = []
        if execution.status == ExecutionStatus.QUEUED:
            execution_move(execution, "start")
            execution.started_at = now
            execution.save(update_fields=["status", "started_at"])
            _record(
                events,
                action=WorkflowEvent.EXECUTION_STARTED,
                actor=None,
                target=execution,
                **where,
                data={"version": execution.version.number},
            )
        _record(
            events,
            action=WorkflowEvent.STEP_STARTED,
            actor=None,
            target=run,
            **where,
            data={
                "execution": execution.pk,
                "step": run.step_id,
                "type": run.step_type,
                "attempt": run.attempt,
                "delivery": run.deliveries,
                "reclaimed": previous == StepStatus.RUNNING,
                "inputs_digest": run.inputs_digest,
            },
        )
        _flush(events)
        return Claim(
            step_run_id=run.pk,
            execution_id=execution.pk,
            token=run.claim_token,
            step=step,
            attempt=run.attempt,
            context=json.loads(run.inputs),
            env=StepEnv(
                workspace_id=execution.workspace_id,
                execution_id=execution.pk,
                step_run_id=str(run.pk),
                pins=run.pins,
            ),
        )


def step_run_claim_failed(*, step_run_id: uuid.UUID, error_class: str) -> None:
    """A claim that raised rolled back its own delivery count: count it here, in a transaction of
    its own, so that a row whose claim always fails (a missing data key, say) is poisoned after
    ``EXECUTION_MAX_DELIVERIES`` deliveries instead of being sent again for ever."""
    with audited_transaction():
        execution, run, _ = _lock(step_run_id, skip_locked=True)
        if run is None or run.status not in (StepStatus.PENDING, StepStatus.RUNNING):
            return
        where = _where(execution)
        run.deliveries += 1
        if run.deliveries <= settings.EXECUTION_MAX_DELIVERIES:
            run.save(update_fields=["deliveries"])
            audit_event_record(
                action=WorkflowEvent.STEP_CLAIM_FAILED,
                actor=None,
                target=run,
                **where,
                data={"execution": execution.pk, "step": run.step_id, "delivery": run.deliveries,
                      "error_class": error_class[:100]},
            )  # fmt: skip
            return
        _end_step(
            run,
            "poison",
            error_class="Poisoned",
            message=f"Its claim failed ({error_class[:100]}) on each of {run.deliveries} deliveries.",
        )
        audit_event_record(
            action=WorkflowEvent.STEP_POISONED,
            actor=None,
            target=run,
            **where,
            data={"execution": execution.pk, "step": run.step_id, "deliveries": run.deliveries},
        )
        if execution.status not in FINISHED_EXECUTION_STATES:
            _finish_execution(execution, "fail", data={"step": run.step_id, "error_class": "Poisoned"})


def _pins(execution: Execution, step: dict) -> dict:
    """What a step keeps for all its deliveries, chosen at its first claim: for a call to an
    integration, that integration and the credential version current now (a rotation's grace
    period keeps it valid)."""
    if step["type"] == "ai_prompt":
        verdict = ai_model_verdict(
            workspace=execution.workspace, provider=step["provider"], model=step["model"]
        )
        slug = verdict.provider.integration_slug if verdict.provider is not None else None
    elif step["type"] == "http_request":
        slug = step["integration"]
    else:
        return {}
    integration = integrations_by_slug(execution.workspace).get(slug) if slug else None
    if integration is None:
        return {}
    credential = integration_credential_current(integration.pk)
    # The integration too: a credential is only ever sent to the integration it belongs to.
    return {"integration": integration.pk, **({"credential": credential} if credential else {})}


def _checked_output(outcome: StepOutcome) -> tuple[StepOutcome, str, str]:
    if not outcome.ok:
        return outcome, "", ""
    try:
        text, digest = _sealable(outcome.output)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError):
        return StepOutcome.failed("OutputError", "The step's output is not storable JSON."), "", ""
    if len(text.encode()) > MAX_OUTPUT_BYTES:
        return (
            StepOutcome.failed(
                "OutputError", f"The step's output is larger than {MAX_OUTPUT_BYTES:,} bytes."
            ),
            "",
            "",
        )
    return outcome, text, digest


def _account_used(outcome: StepOutcome, now) -> None:
    """A service account a step acted as was used: its dormancy clock restarts."""
    for record in (outcome.data_event, outcome.ai_call):
        account_id = (record or {}).get("service_account_id")
        if account_id:
            ServiceAccount.objects.filter(pk=account_id).update(last_used_at=now)


def step_run_finish(*, claim: Claim, outcome: StepOutcome) -> StepRun | None:
    """Record the outcome of a claimed attempt, its ledger events and what follows, in one transaction.

    Returns None when the claim is no longer the row's (a duplicate delivery, or a lease that
    lapsed and was claimed again): nothing is recorded twice. When the run was cancelled or halted
    while the step was in flight, its result is recorded and nothing follows. The step's events
    and those of what follows it are written together, in order, in one INSERT.
    """
    with audited_transaction():
        events: list[dict] = []
        run = _finish(claim, outcome, events)
        _flush(events)
        return run


def _finish(claim: Claim, outcome: StepOutcome, events: list[dict]) -> StepRun | None:
    execution, run, halt = _lock(claim.step_run_id, skip_locked=False, halts=True)
    if run is None or run.status != StepStatus.RUNNING or run.claim_token != claim.token:
        return None
    where = _where(execution)
    now = timezone.now()
    duration_ms = int((now - run.started_at).total_seconds() * 1000) if run.started_at else None
    if outcome.ai_call is not None:
        ai_call_record(execution, run, outcome.ai_call, where=where)
    _account_used(outcome, now)
    outcome, text, digest = _checked_output(outcome)
    common = {
        "execution": execution.pk,
        "step": run.step_id,
        "type": run.step_type,
        "attempt": run.attempt,
        "duration_ms": duration_ms,
        "inputs_digest": run.inputs_digest,
    }
    if outcome.data_event is not None:
        touched = dict(outcome.data_event)
        _record(
            events,
            action=WorkflowEvent.DATA_ACCESSED
            if touched.pop("kind", "") == "accessed"
            else WorkflowEvent.DATA_WRITTEN,
            actor=None,
            target=run,
            **where,
            data={"execution": execution.pk, "step": run.step_id, **touched},
        )
    if not outcome.ok:
        message = redact_text(outcome.error_message)[:MAX_ERROR_CHARS]
        retry = (
            not outcome.final
            and run.attempt < settings.EXECUTION_MAX_ATTEMPTS
            and execution.status == ExecutionStatus.RUNNING
        )
        _end_step(run, "retry" if retry else "fail", error_class=outcome.error_class[:100], message=message)
        _record(
            events,
            action=WorkflowEvent.STEP_FAILED,
            actor=None,
            target=run,
            **where,
            data={**common, "error_class": run.error_class, "final": outcome.final, "retry": retry},
        )
        if retry:
            due_at = now + timedelta(seconds=retry_delay(run.attempt))
            _queue_step(
                execution, claim.step, claim.context, attempt=run.attempt + 1, due_at=due_at, events=events
            )
            if halt is not None:
                _flush(events)
                _halt_execution(execution, halt)
            return run
        if execution.status == ExecutionStatus.RUNNING:
            _finish_execution(
                execution, "fail", data={"step": run.step_id, "error_class": run.error_class}, events=events
            )
        return run
    if outcome.wait is not None:
        _flush(events)
        _open_human_task(execution, run, outcome.wait, now=now, common=common)
        return run
    step_move(run, "succeed")
    run.outputs = text
    run.outputs_digest = digest
    run.finished_at = now
    run.lease_until = None
    run.save(update_fields=["status", "outputs", "outputs_digest", "finished_at", "lease_until"])
    _record(
        events,
        action=WorkflowEvent.STEP_SUCCEEDED,
        actor=None,
        target=run,
        **where,
        data={**common, "outputs_digest": digest, "next": outcome.next_step},
    )
    if outcome.decided is not None:
        _record(
            events,
            action=WorkflowEvent.BRANCH_DECIDED,
            actor=None,
            target=run,
            **where,
            data={"execution": execution.pk, "step": run.step_id, **outcome.decided},
        )
    if execution.status != ExecutionStatus.RUNNING:
        return run
    _go_on(execution, run, claim.context, json.loads(text), outcome.next_step, halt=halt, events=events)
    return run


_UNREAD = object()


def _go_on(
    execution: Execution,
    run: StepRun,
    context: dict,
    output,
    next_step: str | None,
    *,
    halt=_UNREAD,
    events: list[dict] | None = None,
) -> None:
    """After ``run`` succeeded with ``output``: queue the next step with the context it sees (or
    finish the run when there is none); a halt raised meanwhile stops the run there. ``halt`` is
    what the caller's lock read (``_lock(halts=True)``); unless given, it is read now. Events go
    to ``events`` when given (``_record``)."""
    if next_step:
        following = {**context, "steps": {**context.get("steps", {}), run.step_id: output}, "prev": output}
        _queue_step(execution, _step_of(execution.version, next_step), following, events=events)
        if halt is _UNREAD:
            halt = _halt_for(execution)
        if halt is not None:
            if events is not None:
                _flush(events)
            _halt_execution(execution, halt)
    else:
        _finish_execution(execution, "succeed", data={"last_step": run.step_id}, events=events)


def _open_human_task(execution: Execution, run: StepRun, wait: dict, *, now, common: dict) -> None:
    """A ``human_approval`` step ends its attempt *waiting*: the task is opened for the role, the
    run waits without a worker. A run cancelled or halted meanwhile opens nothing."""
    where = _where(execution)
    if execution.status != ExecutionStatus.RUNNING:
        _end_step(run, "cancel", error_class="Cancelled", message="The run stopped before its task opened.")
        audit_event_record(
            action=WorkflowEvent.STEP_CANCELLED,
            actor=None,
            target=run,
            **where,
            data={"execution": execution.pk, "step": run.step_id, "execution_status": execution.status},
        )
        return
    step_move(run, "wait")
    run.lease_until = None
    run.save(update_fields=["status", "lease_until"])
    task = HumanTask.objects.create(
        execution=execution,
        step_run=run,
        workspace_id=execution.workspace_id,
        step_id=run.step_id,
        approver_role=wait["approver_role"],
        due_at=now + timedelta(hours=wait["timeout_hours"]),
        on_timeout=wait["on_timeout"],
        created_at=now,
        kind=wait.get("kind") or HumanTaskKind.APPROVAL,
    )
    if wait.get("review") is not None:  # encrypted and bound to the row: written once it has its key
        task.review = json.dumps(redact_data(wait["review"]))
        task.save(update_fields=["review"])
    execution_move(execution, "wait")
    execution.save(update_fields=["status"])
    audit_event_record(
        action=WorkflowEvent.STEP_WAITING, actor=None, target=run, **where, data={**common, "task": task.pk}
    )
    audit_event_record(
        action=WorkflowEvent.HUMAN_TASK_REQUESTED,
        actor=None,
        target=task,
        **where,
        data={
            "execution": execution.pk,
            "step": run.step_id,
            "approver_role": task.approver_role,
            "due_at": task.due_at,
            "on_timeout": task.on_timeout,
        },
    )
    audit_event_record(
        action=WorkflowEvent.EXECUTION_WAITING, actor=None, target=execution, **where, data={"task": task.pk}
    )


def human_task_decide(
    *, actor, task: HumanTask, approve: bool, comment: str = "", override: str | None = None
) -> HumanTask:
    """Approve or reject a waiting task: a person holding its role in the workspace, who did not
    trigger the run; a rejection says why. The run goes on, or fails, in the same transaction.

    For the review of an AI decision, ``override`` (JSON text) replaces the model's output: it is
    validated like the model's (schema, validators, allowed next step) and needs a comment; the
    model's output is kept beside it. An output that failed validation can only be overridden or
    rejected."""
    comment = checked_reason(comment, field="comment", required=False)
    if not approve and not comment:
        raise ValidationError({"comment": "Say why you reject it."})
    replacement = _override_of(override, comment) if override is not None and approve else None
    with audited_transaction():
        execution, task = _lock_task(task.pk)
        require(actor, "execution.view", execution, fresh=True)
        require(actor, "human_task.decide", execution, fresh=True)
        if task.status != HumanTaskStatus.OPEN:
            raise ValidationError(
                {"task": f"This task is {task.get_status_display().lower()}: nothing to decide."}
            )
        if (
            not Membership.objects.holding(task.approver_role)
            .filter(user=actor, workspace_id=task.workspace_id)
            .exists()
        ):
            raise ValidationError(
                {"task": f"Only a person with the role {task.approver_role} in this workspace may decide it."}
            )
        if execution.triggered_by_id is not None and execution.triggered_by_id == actor.pk:
            raise ValidationError({"task": "You triggered this run: someone else must decide its approval."})
        if AuditEvent.objects.filter(
            target_type=Execution._meta.label_lower,
            target_id=str(execution.pk),
            action__in=(WorkflowEvent.OPERATOR_RETRIED, WorkflowEvent.OPERATOR_RESUMED),
            actor_id=actor.pk,
        ).exists():
            raise ValidationError({"task": "You made this run go on: someone else must decide its approval."})
        if override is not None and task.kind != HumanTaskKind.AI_REVIEW:
            raise ValidationError({"override": "Only the review of an AI decision takes an override."})
        if task.kind == HumanTaskKind.AI_REVIEW and approve:
            step = _step_of(execution.version, task.step_id)
            if replacement is not None:
                checked = check_output(replacement, step)
                if not checked.ok:
                    raise ValidationError({"override": checked.problems})
            elif not json.loads(task.review or "{}").get("output_readable", False) or json.loads(
                task.review
            ).get("problems"):
                raise ValidationError(
                    {
                        "task": "The model's output failed validation: override it with a valid output, or reject it."
                    }
                )
        _task_decided(
            execution,
            task,
            HumanTaskStatus.APPROVED if approve else HumanTaskStatus.REJECTED,
            actor=actor,
            comment=comment,
            override=replacement,
        )
    return task


def _override_of(override: str, comment: str) -> Any:
    """The JSON value of a reviewer's override, or a field error."""
    if not isinstance(override, str) or not override.strip():
        raise ValidationError({"override": "Enter the output to use instead, as JSON."})
    if len(override) > MAX_OUTPUT_BYTES:
        raise ValidationError({"override": f"The override is longer than {MAX_OUTPUT_BYTES:,} characters."})
    if not comment:
        raise ValidationError({"comment": "Say why you override the model's output."})
    value, problem = strict_json(override)
    if problem:
        raise ValidationError({"override": "The override: " + problem[0].lower() + problem[1:]})
    return value


def human_tasks_expire(*, now) -> int:
    """End every open task past its deadline with its ``on_timeout`` outcome (the beat)."""
    due = list(
        HumanTask.objects.filter(status=HumanTaskStatus.OPEN, due_at__lte=now).values_list("pk", flat=True)[
            :500
        ]
    )
    ended = 0
    for pk in due:
        with audited_transaction():
            execution, task = _lock_task(pk)
            if task.status == HumanTaskStatus.OPEN and task.due_at <= now:
                _task_decided(execution, task, HumanTaskStatus.TIMED_OUT, actor=None, comment="")
                ended += 1
    return ended


def _lock_task(task_id: int) -> tuple[Execution, HumanTask]:
    execution_id = HumanTask.objects.values_list("execution_id", flat=True).get(pk=task_id)
    execution = (
        Execution.objects.select_for_update(of=("self",))
        .select_related("workspace", "workflow", "version")
        .get(pk=execution_id)
    )
    task = HumanTask.objects.select_for_update(of=("self",)).select_related("step_run").get(pk=task_id)
    return execution, task


def _task_decided(
    execution: Execution, task: HumanTask, status: str, *, actor, comment: str, override: Any = None
) -> None:
    now = timezone.now()
    where = _where(execution)
    approved = status == HumanTaskStatus.APPROVED or (
        status == HumanTaskStatus.TIMED_OUT and task.on_timeout == "approve"
    )
    task.status, task.decided_by, task.decided_at, task.comment = status, actor, now, comment
    fields = ["status", "decided_by", "decided_at", "comment"]
    review = None
    if task.kind == HumanTaskKind.AI_REVIEW:
        review = json.loads(task.review or "{}")
        if override is not None:
            task.override = json.dumps(redact_data(override))
            fields.append("override")
    task.save(update_fields=fields)
    decided = {"execution": execution.pk, "step": task.step_id, "outcome": status, "approved": approved,
               "comment": bool(comment)}  # fmt: skip
    if review is not None:
        decided["kind"] = task.kind
        decided["override"] = override is not None
        if override is not None:
            decided["override_hmac"], decided["hmac_key"] = text_mac(
                execution.workspace_id, json.dumps(override, sort_keys=True, ensure_ascii=False)
            )
    audit_event_record(
        action=WorkflowEvent.HUMAN_TASK_DECIDED, actor=actor, target=task, **where, data=decided
    )
    run = StepRun.objects.select_for_update().get(pk=task.step_run_id)
    if not approved:
        step_move(run, "reject")
        run.finished_at = now
        run.error_class = "Rejected" if status == HumanTaskStatus.REJECTED else "TimedOut"
        run.error_message = (
            redact_text(comment)[:MAX_ERROR_CHARS] if comment else "The task's deadline passed."
        )
        run.save(update_fields=["status", "finished_at", "error_class", "error_message"])
        audit_event_record(
            action=WorkflowEvent.STEP_FAILED,
            actor=actor,
            target=run,
            **where,
            data={
                "execution": execution.pk,
                "step": run.step_id,
                "error_class": run.error_class,
                "final": True,
            },
        )
        _finish_execution(
            execution, "fail", actor=actor, data={"step": run.step_id, "error_class": run.error_class}
        )
        return
    if review is not None and override is not None:
        output = override
        next_step = check_output(output, _step_of(execution.version, run.step_id)).next_step
    elif review is not None:
        # The model's output passed validation before it was stored (redacted, as every output
        # is): the route it chose then is the one it takes, never a re-check of the redacted copy.
        output, next_step = review.get("output"), review.get("next")
    else:
        output = {"approved": True, "outcome": status, "decided_by": getattr(actor, "pk", None)}
        next_step = _step_of(execution.version, run.step_id).get("next")
    text, digest = _sealable(output)
    step_move(run, "approve")
    run.outputs, run.outputs_digest, run.finished_at = text, digest, now
    run.save(update_fields=["status", "outputs", "outputs_digest", "finished_at"])
    audit_event_record(
        action=WorkflowEvent.STEP_SUCCEEDED,
        actor=actor,
        target=run,
        **where,
        data={"execution": execution.pk, "step": run.step_id, "type": run.step_type, "attempt": run.attempt,
              "outputs_digest": digest, "next": next_step},
    )  # fmt: skip
    execution_move(execution, "wake")
    execution.save(update_fields=["status"])
    audit_event_record(
        action=WorkflowEvent.EXECUTION_CONTINUED,
        actor=actor,
        target=execution,
        **where,
        data={"task": task.pk},
    )
    _go_on(execution, run, json.loads(run.inputs), json.loads(text), next_step)


def execution_cancel(*, actor, execution: Execution, reason: str) -> Execution:
    """Stop a run (operators and owners), with a reason. Steps waiting to start are cancelled;
    a step in flight records its result when it ends, and nothing follows it."""
    reason = checked_reason(reason)
    with audited_transaction():
        execution = (
            Execution.objects.select_for_update(of=("self",))
            .select_related("workspace", "workflow", "version")
            .get(pk=execution.pk)
        )
        require(actor, "execution.trigger", execution, fresh=True)
        where = _where(execution)
        execution_move(execution, "cancel")
        execution.finished_at = timezone.now()
        execution.save(update_fields=["status", "finished_at"])
        audit_event_record(
            action=WorkflowEvent.OPERATOR_CANCELLED,
            actor=actor,
            target=execution,
            **where,
            data={"reason": reason},
        )
        # A retry_due row is an attempt that already failed; its pending successor is cancelled.
        waiting = execution.step_runs.select_for_update().filter(
            status__in=(StepStatus.PENDING, StepStatus.WAITING)
        )
        for task in HumanTask.objects.select_for_update().filter(
            execution=execution, status=HumanTaskStatus.OPEN
        ):
            task.status = HumanTaskStatus.CANCELLED
            task.save(update_fields=["status"])
            audit_event_record(
                action=WorkflowEvent.HUMAN_TASK_CLOSED,
                actor=actor,
                target=task,
                **where,
                data={"execution": execution.pk, "step": task.step_id, "status": task.status},
            )
        for run in waiting:
            _end_step(run, "cancel", error_class="Cancelled", message=f"Cancelled by {actor}: {reason}")
            audit_event_record(
                action=WorkflowEvent.STEP_CANCELLED,
                actor=actor,
                target=run,
                **where,
                data={"execution": execution.pk, "step": run.step_id},
            )
        return execution


def execution_retry(*, actor, execution: Execution, reason: str) -> Execution:
    """Run a failed run's failed step again, as a new attempt with the inputs it had (operators and
    owners, with a reason). Only while the run's version is still the active one and nothing halts it."""
    return _restart(
        actor=actor,
        execution=execution,
        reason=reason,
        move="retry",
        ended=(StepStatus.FAILED, StepStatus.POISONED),
        event=WorkflowEvent.OPERATOR_RETRIED,
    )


def execution_resume(*, actor, execution: Execution, reason: str) -> Execution:
    """Go on with a halted run once its halt was released: each step the halt stopped runs again
    as a new attempt (operators and owners, with a reason)."""
    return _restart(
        actor=actor,
        execution=execution,
        reason=reason,
        move="resume",
        ended=(StepStatus.HALTED,),
        event=WorkflowEvent.OPERATOR_RESUMED,
    )


def _restart(*, actor, execution: Execution, reason: str, move: str, ended: tuple, event) -> Execution:
    reason = checked_reason(reason)
    with audited_transaction():
        execution = (
            Execution.objects.select_for_update(of=("self",))
            .select_related("workspace", "workflow", "version")
            .get(pk=execution.pk)
        )
        require(actor, "execution.trigger", execution, fresh=True)
        halt = _halt_for(execution)
        if halt is not None:
            raise ValidationError({"execution": f"{halt.message} It must be released first."})
        workflow = execution.workflow
        if workflow.status != WorkflowStatus.ACTIVE:
            raise ValidationError(
                {
                    "execution": f"{workflow} is {workflow.get_status_display().lower()}: only active workflows run."
                }
            )
        if workflow.active_version_id != execution.version_id:
            raise ValidationError(
                {
                    "execution": f"This run started on version {execution.version.number}, which is no "
                    "longer the active version: start a new run instead."
                }
            )
        execution_move(execution, move)
        latest: dict[str, StepRun] = {}
        for run in execution.step_runs.order_by("step_id", "attempt"):
            latest[run.step_id] = run
        again = [run for run in latest.values() if run.status in ended]
        if any(run.step_type == "human_approval" and run.status == StepStatus.FAILED for run in again):
            raise ValidationError(
                {"execution": "A rejected or timed-out approval is final: start a new run instead."}
            )
        if not again:
            raise ValidationError({"execution": "No step of this run is waiting to run again."})
        execution.finished_at = None
        execution.started_at = execution.started_at or timezone.now()
        execution.save(update_fields=["status", "finished_at", "started_at"])
        audit_event_record(
            action=event,
            actor=actor,
            target=execution,
            **_where(execution),
            data={"reason": reason, "steps": sorted(run.step_id for run in again)},
        )
        for run in again:
            _queue_step(
                execution,
                _step_of(execution.version, run.step_id),
                json.loads(run.inputs),
                actor=actor,
                attempt=run.attempt + 1,
            )
        return execution
