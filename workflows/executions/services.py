"""Every write of the execution engine: trigger, claim, finish, cancel.

Each function runs in one transaction, moves rows it locked along the tables of
``transitions``, and records its ledger events in that same transaction. Locks are always
taken execution first, then its step run, so the engine and an operator never deadlock. A step
that becomes runnable is dispatched to the workers only after its transaction commits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import rfc8785
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_event_record, audited_transaction
from governance.access.decision import require
from governance.core.redaction import redact_data, redact_text
from governance.core.text import json_refusal
from workflows.changes.models import ChangeRequest, ChangeState, Workflow, WorkflowStatus, WorkflowVersion
from workflows.credentials.selectors import integration_credential_current
from workflows.events import WorkflowEvent
from workflows.executions.models import Execution, ExecutionStatus, StepRun, StepStatus, TriggerKind
from workflows.executions.steps.base import StepEnv, StepOutcome
from workflows.executions.transitions import FINISHED_EXECUTION_STATES, execution_move, step_move
from workflows.integrations.selectors import integrations_by_slug

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


def _digest(value: Any) -> str:
    return hashlib.sha256(rfc8785.dumps(value)).hexdigest()


def _sealable(value: Any) -> tuple[str, str]:
    """The redacted JSON text of ``value`` and its digest (what the row and the ledger keep)."""
    redacted = redact_data(value)
    return json.dumps(redacted), _digest(redacted)


def _where(execution: Execution) -> dict[str, int]:
    return {"organization_id": execution.workspace.organization_id, "workspace_id": execution.workspace_id}


def _checked_input(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise ValidationError({"input": "The input must be a JSON object."})
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
        pinned = _runnable_version(workflow, version)
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
) -> StepRun:
    """Insert the pending row of a step (a retry: with the time it is due) and send it after commit;
    a retry is sent by the sweep once it is due, never as a countdown held by the broker."""
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
    )
    run.save()
    audit_event_record(
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
        return
    step_run_mark_dispatched(step_run_id=step_run_id)


def step_run_mark_dispatched(*, step_run_id: uuid.UUID) -> None:
    """Note that a message for the row went to the broker. Delivery bookkeeping, not state: the
    column is left out of the capture, and no ledger event is written for it."""
    StepRun.objects.filter(pk=step_run_id).update(dispatched_at=timezone.now())


def _step_of(version: WorkflowVersion, step_id: str) -> dict:
    return next(step for step in version.definition["steps"] if step["id"] == step_id)


def _finish_execution(execution: Execution, name: str, *, actor=None, data: dict | None = None) -> None:
    execution_move(execution, name)
    execution.finished_at = timezone.now()
    execution.save(update_fields=["status", "finished_at"])
    audit_event_record(
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


def _lock(step_run_id, *, skip_locked: bool) -> tuple[Execution | None, StepRun | None]:
    execution_id = StepRun.objects.filter(pk=step_run_id).values_list("execution_id", flat=True).first()
    if execution_id is None:
        return None, None
    execution = (
        Execution.objects.select_for_update(of=("self",))
        .select_related("workspace", "workflow", "version")
        .get(pk=execution_id)
    )
    run = StepRun.objects.select_for_update(skip_locked=skip_locked).filter(pk=step_run_id).first()
    return execution, run


def step_run_claim(*, step_run_id: uuid.UUID) -> Claim | None:
    """Claim a step run for this worker, or None when there is nothing to do.

    Nothing to do: another worker holds it, it is not due, it already finished (a duplicate
    delivery), it was delivered more than ``EXECUTION_MAX_DELIVERIES`` times (it becomes
    ``poisoned`` and the run fails), its run was cancelled or finished (it is cancelled), or its
    workflow is quarantined (it ends ``halted``, and so does the run). Those checks come after
    the claim's lock and before any I/O.
    """
    with audited_transaction():
        execution, run = _lock(step_run_id, skip_locked=True)
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
        workflow_status = (
            Workflow.objects.filter(pk=execution.workflow_id).values_list("status", flat=True).get()
        )
        if workflow_status == WorkflowStatus.QUARANTINED:
            _end_step(run, "halt", error_class="Halted", message="The workflow is quarantined.")
            audit_event_record(
                action=WorkflowEvent.STEP_HALTED,
                actor=None,
                target=run,
                **where,
                data={"execution": execution.pk, "step": run.step_id, "scope": "workflow"},
            )
            execution_move(execution, "halt")
            execution.finished_at = now
            execution.save(update_fields=["status", "finished_at"])
            audit_event_record(
                action=WorkflowEvent.EXECUTION_HALTED,
                actor=None,
                target=execution,
                **where,
                data={"step": run.step_id, "scope": "workflow", "reason": "The workflow is quarantined."},
            )
            return None
        previous = step_move(run, "claim")
        step = _step_of(execution.version, run.step_id)
        if run.started_at is None:
            run.started_at = now
            run.pins = _pins(execution, step)
        run.claim_token = uuid.uuid4().hex
        run.lease_until = now + timedelta(seconds=settings.EXECUTION_LEASE_SECONDS)
        run.save(update_fields=["status", "claim_token", "lease_until", "started_at", "pins", "deliveries"])
        if execution.status == ExecutionStatus.QUEUED:
            execution_move(execution, "start")
            execution.started_at = now
            execution.save(update_fields=["status", "started_at"])
            audit_event_record(
                action=WorkflowEvent.EXECUTION_STARTED,
                actor=None,
                target=execution,
                **where,
                data={"version": execution.version.number},
            )
        audit_event_record(
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


def _pins(execution: Execution, step: dict) -> dict:
    """What a step keeps for all its deliveries, chosen at its first claim: for a call to an
    integration, the credential version current now (a rotation's grace period keeps it valid)."""
    if step["type"] != "http_request":
        return {}
    integration = integrations_by_slug(execution.workspace).get(step["integration"])
    credential = integration_credential_current(integration.pk) if integration is not None else None
    return {"credential": credential} if credential else {}


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


def step_run_finish(*, claim: Claim, outcome: StepOutcome) -> StepRun | None:
    """Record the outcome of a claimed attempt, its ledger events and what follows, in one transaction.

    Returns None when the claim is no longer the row's (a duplicate delivery, or a lease that
    lapsed and was claimed again): nothing is recorded twice. When the run was cancelled or halted
    while the step was in flight, its result is recorded and nothing follows.
    """
    with audited_transaction():
        execution, run = _lock(claim.step_run_id, skip_locked=False)
        if run is None or run.status != StepStatus.RUNNING or run.claim_token != claim.token:
            return None
        where = _where(execution)
        now = timezone.now()
        duration_ms = int((now - run.started_at).total_seconds() * 1000) if run.started_at else None
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
            audit_event_record(
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
            _end_step(
                run, "retry" if retry else "fail", error_class=outcome.error_class[:100], message=message
            )
            audit_event_record(
                action=WorkflowEvent.STEP_FAILED,
                actor=None,
                target=run,
                **where,
                data={**common, "error_class": run.error_class, "final": outcome.final, "retry": retry},
            )
            if retry:
                due_at = now + timedelta(seconds=retry_delay(run.attempt))
                _queue_step(execution, claim.step, claim.context, attempt=run.attempt + 1, due_at=due_at)
                return run
            if execution.status == ExecutionStatus.RUNNING:
                _finish_execution(
                    execution, "fail", data={"step": run.step_id, "error_class": run.error_class}
                )
            return run
        step_move(run, "succeed")
        run.outputs = text
        run.outputs_digest = digest
        run.finished_at = now
        run.lease_until = None
        run.save(update_fields=["status", "outputs", "outputs_digest", "finished_at", "lease_until"])
        audit_event_record(
            action=WorkflowEvent.STEP_SUCCEEDED,
            actor=None,
            target=run,
            **where,
            data={**common, "outputs_digest": digest, "next": outcome.next_step},
        )
        if outcome.decided is not None:
            audit_event_record(
                action=WorkflowEvent.BRANCH_DECIDED,
                actor=None,
                target=run,
                **where,
                data={"execution": execution.pk, "step": run.step_id, **outcome.decided},
            )
        if execution.status != ExecutionStatus.RUNNING:
            return run
        if outcome.next_step:
            output = json.loads(text)
            context = {**claim.context, "steps": {**claim.context.get("steps", {}), run.step_id: output}}
            context["prev"] = output
            _queue_step(execution, _step_of(execution.version, outcome.next_step), context)
        else:
            _finish_execution(execution, "succeed", data={"last_step": run.step_id})
        return run


def execution_cancel(*, actor, execution: Execution, reason: str) -> Execution:
    """Stop a run (operators and owners), with a reason. Steps waiting to start are cancelled;
    a step in flight records its result when it ends, and nothing follows it."""
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why."})
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
            data={"reason": reason.strip()[:1000]},
        )
        # A retry_due row is an attempt that already failed; its pending successor is cancelled.
        waiting = execution.step_runs.select_for_update().filter(
            status__in=(StepStatus.PENDING, StepStatus.WAITING)
        )
        for run in waiting:
            _end_step(
                run, "cancel", error_class="Cancelled", message=f"Cancelled by {actor}: {reason.strip()}"
            )
            audit_event_record(
                action=WorkflowEvent.STEP_CANCELLED,
                actor=actor,
                target=run,
                **where,
                data={"execution": execution.pk, "step": run.step_id},
            )
        return execution
