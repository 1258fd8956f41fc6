"""One runner per step type, registered by type. A runner takes the step (its definition) and
the context (``input``, ``steps``, ``prev``) and returns a ``StepOutcome``; it raises
``StepError`` for a failure it understands. Runners write nothing to the database (a refusal
at the network boundary excepted, which the outbound client records itself): the engine records
their outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workflows.executions.steps import ai_prompt, branch, http_request, human_approval, transform
from workflows.executions.steps.base import StepEnv, StepError, StepOutcome

RUNNERS: dict[str, Callable[[dict, dict, StepEnv], StepOutcome]] = {
    "transform": transform.run,
    "branch": branch.run,
    "http_request": http_request.run,
    "ai_prompt": ai_prompt.run,
    "human_approval": human_approval.run,
}


def run_step(step: dict, context: dict[str, Any], env: StepEnv | None = None) -> StepOutcome:
    """Run ``step`` with ``context`` in ``env``; a failure the runner understands becomes a failed outcome."""
    runner = RUNNERS.get(step.get("type", ""))
    try:
        if runner is None:
            raise StepError("UnknownStepType", f"No runner for step type {step.get('type')!r}.")
        return runner(step, context, env or StepEnv(workspace_id=0, execution_id=0, step_run_id=""))
    except StepError as failure:
        return StepOutcome.failed(failure.error_class, failure.message, final=failure.final)


__all__ = ["RUNNERS", "StepEnv", "StepError", "StepOutcome", "run_step"]
