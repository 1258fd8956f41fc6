"""``human_approval``: the run waits, without holding a worker, for a person of the named role in
the workspace to approve or reject — never the person who triggered it. The engine opens the
task (``services.step_run_finish``); ``services.human_task_decide`` and the expiry sweep end it.

Definition: ``approver_role`` (a workspace role's code, e.g. ``compliance_officer``),
``timeout_hours`` (default 72) and ``on_timeout`` (``reject`` by default, or ``approve``).
"""

from __future__ import annotations

from workflows.executions.steps.base import StepEnv, StepOutcome

DEFAULT_TIMEOUT_HOURS = 72


def run(step: dict, context: dict, env: StepEnv) -> StepOutcome:
    return StepOutcome(
        wait={
            "approver_role": step["approver_role"],
            "timeout_hours": int(step.get("timeout_hours") or DEFAULT_TIMEOUT_HOURS),
            "on_timeout": step.get("on_timeout") or "reject",
        },
        next_step=step.get("next"),
    )
