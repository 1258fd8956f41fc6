"""What a step runner gives back, and the failure it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Celery's soft time limit of one step's attempt (the task raises SoftTimeLimitExceeded in it);
# a runner's own deadlines stay well inside it, so that it records what happened itself.
STEP_SOFT_TIME_LIMIT_SECONDS = 60


class StepError(Exception):
    """A step failed for a reason the runner understands. ``final``: retrying cannot help (a bad
    expression, a refused request, a step type that cannot run yet)."""

    def __init__(self, error_class: str, message: str, *, final: bool = True) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.final = final


@dataclass(frozen=True)
class StepOutcome:
    """The result of one attempt: an output and the step that follows, or an error.

    ``decided`` is what a branch decided (expression, value, edge), recorded as ``branch.decided``;
    ``data_event`` what a call to an integration touched (integration, method, host, status),
    recorded as ``data.accessed`` or ``data.written``; ``wait`` the human task a
    ``human_approval`` step opens (the run then waits without holding a worker).
    """

    output: Any = None
    next_step: str | None = None
    error_class: str = ""
    error_message: str = ""
    final: bool = True
    decided: dict | None = None
    data_event: dict | None = None
    # A step that waits for people (``human_approval``): the task to open, recorded by the engine.
    wait: dict | None = None
    # An ``ai_prompt`` step's call (or refusal): the decision record the engine writes with the result.
    ai_call: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.error_class

    @classmethod
    def failed(
        cls,
        error_class: str,
        message: str,
        *,
        final: bool = True,
        data_event: dict | None = None,
        ai_call: dict | None = None,
    ) -> StepOutcome:
        return cls(
            error_class=error_class or "StepError",
            error_message=message,
            final=final,
            data_event=data_event,
            ai_call=ai_call,
        )


@dataclass(frozen=True)
class StepEnv:
    """Where a step runs: its workspace, execution and row, and what it was pinned to at its first
    claim (``pins["credential"]``: the credential version current when the step started)."""

    workspace_id: int
    execution_id: int
    step_run_id: str
    pins: dict = field(default_factory=dict)
