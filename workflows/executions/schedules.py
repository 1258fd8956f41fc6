"""Scheduled triggers: an active workflow whose approved version says ``{"type": "schedule",
"cron": ...}`` runs once per slot of its cron expression, in its workspace's time zone.

The beat's ``schedules_tick`` looks at every such workflow and starts the run of the latest slot
that fell due within ``EXECUTION_SCHEDULE_WINDOW_SECONDS`` (slots missed for longer, e.g. while
the beat was down, are not made up). The run's idempotency key is the slot itself, and triggers
of one workflow are serialised on its row: however many beat processes tick, each slot starts at
most one run. Daylight-saving changes follow Vixie cron, as the editor's preview does
(``workflows.changes.schedule``).

A scheduled run is started by the workflow's scheduler — a machine principal confined to the
workflow's workspace that may trigger executions and nothing else. Like a service account's, its
decisions are the decision point's machine rule; the attribute policies, which speak about people
(region, manager, business hours of a person's work), are not asked: the approved version's
schedule is the authority for when it runs. Halts and quarantines stop scheduled runs as any
other (a refused slot is recorded as ``execution.refused``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from governance.access.decision import AccessDenied
from workflows.changes.models import Workflow, WorkflowStatus
from workflows.executions.models import Execution, TriggerKind
from workflows.executions.principals import WorkflowTriggerPrincipal
from workflows.executions.services import execution_trigger

logger = logging.getLogger(__name__)


def due_slot(expression: str, time_zone: str, now: datetime) -> datetime | None:
    """The latest slot of ``expression`` in ``time_zone`` at or before ``now`` and no older than the
    window, as an aware datetime in that zone; None when there is none (or the schedule is bad)."""
    try:
        zone = ZoneInfo(time_zone)
        latest = next(
            CronSim(expression.strip(), (now + timedelta(seconds=1)).astimezone(zone), reverse=True)
        )
    except (CronSimError, ZoneInfoNotFoundError, ValueError, OverflowError, StopIteration):
        return None
    window = timedelta(seconds=settings.EXECUTION_SCHEDULE_WINDOW_SECONDS)
    return latest if latest > now - window else None


def slot_key(slot: datetime) -> str:
    """The idempotency key of a slot: the same for every beat that sees it."""
    return f"schedule:{slot.astimezone(UTC).strftime('%Y-%m-%dT%H:%MZ')}"


def schedules_start_due(*, now: datetime) -> int:
    """Start the run of every scheduled workflow's slot that fell due; return how many it started
    (a slot already started by this or another beat counts once, the first time)."""
    started = 0
    scheduled = Workflow.objects.filter(
        status=WorkflowStatus.ACTIVE, active_version__definition__trigger__type="schedule"
    ).select_related("workspace", "active_version")
    for workflow in scheduled:
        trigger = workflow.active_version.definition.get("trigger") or {}
        slot = due_slot(str(trigger.get("cron") or ""), workflow.workspace.time_zone, now)
        if slot is None:
            continue
        key = slot_key(slot)
        if Execution.objects.filter(workflow=workflow, idempotency_key=key).exists():
            continue  # this slot's run started at an earlier tick, or by another beat
        before = timezone.now()
        try:
            execution = execution_trigger(
                actor=WorkflowTriggerPrincipal.of(workflow, "scheduler"),
                workflow=workflow,
                input={"scheduled_for": slot.isoformat()},
                idempotency_key=key,
                kind=TriggerKind.SCHEDULE,
            )
        except (ValidationError, AccessDenied) as refusal:  # halted, quarantined meanwhile, …
            logger.info("Scheduled run of workflow %s for %s refused: %s", workflow.pk, key, refusal)
            continue
        except Exception:  # one workflow's failure must not stop every other one's slot
            logger.exception("Scheduled run of workflow %s for %s failed to start.", workflow.pk, key)
            continue
        started += execution.created_at >= before  # not a run another beat started just now
    return started
