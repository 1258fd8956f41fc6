"""The engine's tasks: one step per message, and the sweep that makes sure every step is sent.

A message only says "look at step run N now"; PostgreSQL holds the truth. ``step_run_execute``
claims the row (a duplicate or late message finds nothing to do), runs the step's runner
outside any transaction — network I/O never holds a row lock — and records the outcome. A
worker killed mid-step leaves a lease that lapses; the sweep sends the row again.
"""

from __future__ import annotations

import logging

from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from governance.core.context import ActorContext, bind_context
from governance.core.jobs import shared_task
from workflows.executions import schedules, selectors, services
from workflows.executions.steps import StepOutcome, run_step
from workflows.executions.steps.base import STEP_SOFT_TIME_LIMIT_SECONDS

logger = logging.getLogger(__name__)

# Runs halted per transaction: short row locks, few commits.
HALT_BATCH = 200


@shared_task(
    name="workflows.step_run_execute",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=STEP_SOFT_TIME_LIMIT_SECONDS,
    time_limit=STEP_SOFT_TIME_LIMIT_SECONDS + 30,
)
def step_run_execute(step_run_id: str) -> str:
    """Claim → run → finish one step run; returns what happened (for logs and tests)."""
    with bind_context(ActorContext(user_agent="celery:workflows.step_run_execute")):
        try:
            claim = services.step_run_claim(step_run_id=step_run_id)
        except Exception as error:  # the claim itself failed (rolled back): count the delivery anyway
            logger.exception("Step run %s: the claim failed.", step_run_id)
            services.step_run_claim_failed(step_run_id=step_run_id, error_class=type(error).__name__)
            return "claim_failed"
        if claim is None:
            return "skipped"
        try:
            outcome = run_step(claim.step, claim.context, claim.env)
        except SoftTimeLimitExceeded:
            outcome = StepOutcome.failed("TimeLimitExceeded", "The step ran past its time limit.")
        except Exception as error:  # a runner's bug fails its step, visibly, not the worker
            logger.exception("Step run %s: the %s runner raised.", step_run_id, claim.step.get("type"))
            outcome = StepOutcome.failed(type(error).__name__, "The step's runner failed unexpectedly.")
        run = services.step_run_finish(claim=claim, outcome=outcome)
        return "superseded" if run is None else run.status


@shared_task(name="workflows.steps_due_dispatch", ignore_result=True)
def steps_due_dispatch() -> int:
    """The beat sweep: send pending rows never sent or lost in transit, and rows whose lease lapsed."""
    sent = 0
    for step_run_id in selectors.step_runs_to_dispatch(now=timezone.now()):
        try:
            step_run_execute.delay(str(step_run_id))
        except Exception:  # the broker is down: try again at the next sweep
            logger.warning("Steps sweep: the broker refused a message; %d sent before it.", sent)
            break
        services.step_run_mark_dispatched(step_run_id=step_run_id)
        sent += 1
    return sent


@shared_task(name="workflows.halts_enforce", ignore_result=True)
def halts_enforce() -> int:
    """Mark ``halted`` every open run under a halt or a quarantine that has no step in flight
    (sent when a halt or quarantine commits, and by the beat), in transactions of
    ``HALT_BATCH`` runs. Returns how many it halted."""
    halted = 0
    with bind_context(ActorContext(user_agent="celery:workflows.halts_enforce")):
        while True:
            found = selectors.executions_to_halt(now=timezone.now())
            done = sum(
                services.executions_halt_enforce(execution_ids=found[start : start + HALT_BATCH])
                for start in range(0, len(found), HALT_BATCH)
            )
            halted += done
            if done == 0:  # nothing left, or only runs a worker holds (they halt themselves)
                return halted


@shared_task(name="workflows.schedules_tick", ignore_result=True)
def schedules_tick() -> int:
    """The beat's scheduler: start each scheduled workflow's run for the slot that fell due."""
    with bind_context(ActorContext(user_agent="celery:workflows.schedules_tick")):
        return schedules.schedules_start_due(now=timezone.now())


@shared_task(name="workflows.human_tasks_expire", ignore_result=True)
def human_tasks_expire() -> int:
    """The beat: end every open human task past its deadline with its timeout outcome."""
    with bind_context(ActorContext(user_agent="celery:workflows.human_tasks_expire")):
        return services.human_tasks_expire(now=timezone.now())
