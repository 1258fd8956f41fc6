"""The state tables of executions and step runs: the only way their ``status`` changes.

Services call ``execution_move`` / ``step_move`` on rows they locked with ``select_for_update``;
a move from a state that does not allow it raises ``ValidationError`` (e.g. cancelling a run
that already finished), so two workers or an operator and a worker cannot both take effect.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from workflows.executions.models import Execution, ExecutionStatus, StepRun, StepStatus

E = ExecutionStatus
S = StepStatus

EXECUTION_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": ((E.QUEUED,), E.RUNNING),
    "wait": ((E.RUNNING,), E.WAITING),
    "wake": ((E.WAITING,), E.RUNNING),
    "succeed": ((E.RUNNING,), E.SUCCEEDED),
    "fail": ((E.QUEUED, E.RUNNING, E.WAITING), E.FAILED),
    "cancel": ((E.QUEUED, E.RUNNING, E.WAITING, E.HALTED), E.CANCELLED),
    "halt": ((E.QUEUED, E.RUNNING, E.WAITING), E.HALTED),
    # An operator's decisions: run the failed step again, or go on after a halt was released.
    "retry": ((E.FAILED,), E.RUNNING),
    "resume": ((E.HALTED,), E.RUNNING),
}

STEP_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    # A running row is claimed again only when its lease expired (the worker died mid-step).
    "claim": ((S.PENDING, S.RUNNING), S.RUNNING),
    "succeed": ((S.RUNNING,), S.SUCCEEDED),
    "fail": ((S.RUNNING,), S.FAILED),
    # A retryable failure: this attempt ends, a new pending row with attempt + 1 is due later.
    "retry": ((S.RUNNING,), S.RETRY_DUE),
    "poison": ((S.PENDING, S.RUNNING), S.POISONED),
    "halt": ((S.PENDING, S.RUNNING, S.WAITING), S.HALTED),
    "cancel": ((S.PENDING, S.RUNNING, S.WAITING), S.CANCELLED),
    # A human_approval step: it waits for its task, then a person (or the deadline) decides.
    "wait": ((S.RUNNING,), S.WAITING),
    "approve": ((S.WAITING,), S.SUCCEEDED),
    "reject": ((S.WAITING,), S.FAILED),
}

FINISHED_EXECUTION_STATES = (E.SUCCEEDED, E.FAILED, E.CANCELLED, E.HALTED)


def _move(row, table: dict, name: str, label: str) -> str:
    sources, target = table[name]
    if row.status not in sources:
        raise ValidationError(
            {"status": f"This {label} is {row.get_status_display().lower()}; '{name}' is not possible now."}
        )
    previous = row.status
    row.status = target
    return previous


def execution_move(execution: Execution, name: str) -> str:
    """Move ``execution`` (locked by the caller) along ``name``; the caller saves; return the old state."""
    return _move(execution, EXECUTION_TRANSITIONS, name, "execution")


def step_move(step_run: StepRun, name: str) -> str:
    """Move ``step_run`` (locked by the caller) along ``name``; the caller saves; return the old state."""
    return _move(step_run, STEP_TRANSITIONS, name, "step run")
