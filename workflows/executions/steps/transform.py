"""``transform``: the step's output is the value of its CEL expression."""

from __future__ import annotations

from workflows.executions.expressions import ExpressionError, evaluate
from workflows.executions.steps.base import StepEnv, StepError, StepOutcome


def run(step: dict, context: dict, env: StepEnv) -> StepOutcome:
    try:
        value = evaluate(step["expression"], context)
    except ExpressionError as error:
        raise StepError("ExpressionError", str(error)) from None
    return StepOutcome(output=value, next_step=step.get("next"))
