"""Step types the engine cannot run yet. They fail, finally and plainly, rather than pretend:
``ai_prompt`` (through the AI guardrails) comes later."""

from __future__ import annotations

from workflows.executions.steps.base import StepEnv, StepError, StepOutcome


def _refuse(type_name: str, what: str) -> StepOutcome:
    raise StepError("NotYetRunnable", f"Step type {type_name!r} is not yet runnable: {what}.")


def ai_prompt(step: dict, context: dict, env: StepEnv) -> StepOutcome:
    return _refuse("ai_prompt", "model calls through the AI guardrails are not built yet")
