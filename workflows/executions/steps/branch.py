"""``branch``: its CEL condition must be true or false; the step continues at ``then`` or ``else``."""

from __future__ import annotations

from workflows.executions.expressions import ExpressionError, evaluate
from workflows.executions.steps.base import StepEnv, StepError, StepOutcome


def run(step: dict, context: dict, env: StepEnv) -> StepOutcome:
    try:
        value = evaluate(step["condition"], context)
    except ExpressionError as error:
        raise StepError("ExpressionError", str(error)) from None
    if not isinstance(value, bool):
        raise StepError(
            "ExpressionError",
            f"The condition must be true or false; it gave a {type(value).__name__}.",
        )
    edge = "then" if value else "else"
    return StepOutcome(
        output={"value": value, "edge": edge},
        next_step=step[edge],
        decided={"expression": step["condition"], "value": value, "edge": edge, "next": step[edge]},
    )
