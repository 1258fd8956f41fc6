"""Scheduled triggers: once per slot of the approved cron expression, in the workspace's time zone,
however many beats tick; refused under a halt or a quarantine like any trigger."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from audit.models import AuditEvent
from governance.access.decision import decide
from tests.workflows.test_executions import active_workflow, drain
from workflows.changes import services as changes
from workflows.changes.models import WorkflowStatus
from workflows.executions import halts, schedules
from workflows.executions.models import Execution
from workflows.executions.principals import WorkflowTriggerPrincipal

BERLIN = ZoneInfo("Europe/Berlin")


def scheduled(world, cron="0 6 * * *", slug="nightly"):
    definition = {
        "trigger": {"type": "schedule", "cron": cron},
        "steps": [
            {"id": "stamp", "type": "transform", "expression": "{'at': input.scheduled_for}", "next": None}
        ],
    }
    world.ws.time_zone = "Europe/Berlin"
    world.ws.save(update_fields=["time_zone"])
    return active_workflow(world, definition, slug=slug)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 12, 4, 6, 0, 30, tzinfo=BERLIN), datetime(2026, 12, 4, 6, 0, tzinfo=BERLIN)),
        (datetime(2026, 12, 4, 6, 0, 0, tzinfo=BERLIN), datetime(2026, 12, 4, 6, 0, tzinfo=BERLIN)),
        (datetime(2026, 12, 4, 6, 1, 59, tzinfo=BERLIN), datetime(2026, 12, 4, 6, 0, tzinfo=BERLIN)),
        (datetime(2026, 12, 4, 6, 2, 1, tzinfo=BERLIN), None),  # older than the window: not made up
        (datetime(2026, 12, 4, 5, 59, 59, tzinfo=BERLIN), None),
        # The same instant written in UTC: the slot is 06:00 in Berlin, 05:00 UTC.
        (datetime(2026, 12, 4, 5, 0, 30, tzinfo=UTC), datetime(2026, 12, 4, 6, 0, tzinfo=BERLIN)),
    ],
)
def test_the_due_slot_is_the_latest_one_within_the_window(settings, now, expected):
    settings.EXECUTION_SCHEDULE_WINDOW_SECONDS = 120
    assert schedules.due_slot("0 6 * * *", "Europe/Berlin", now) == expected


def test_a_slot_in_the_spring_gap_runs_at_the_first_moment_after_it(settings):
    settings.EXECUTION_SCHEDULE_WINDOW_SECONDS = 120
    now = datetime(2027, 3, 28, 3, 1, tzinfo=BERLIN)  # 02:30 does not exist that day
    assert schedules.due_slot("30 2 * * *", "Europe/Berlin", now) == datetime(
        2027, 3, 28, 3, 0, tzinfo=BERLIN
    )


def test_bad_schedules_have_no_slot():
    now = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
    assert schedules.due_slot("61 25 * * *", "Europe/Berlin", now) is None
    assert schedules.due_slot("0 6 * * *", "Mars/Olympus", now) is None


def test_each_slot_starts_one_run_however_many_ticks_see_it(shop, settings):
    workflow = scheduled(shop)
    at = datetime(2026, 12, 4, 6, 0, 20, tzinfo=BERLIN)
    assert schedules.schedules_start_due(now=at) == 1
    assert schedules.schedules_start_due(now=at + timedelta(seconds=30)) == 0  # the next tick
    execution = Execution.objects.get(workflow=workflow)
    assert (execution.trigger_kind, execution.idempotency_key) == ("schedule", "schedule:2026-12-04T05:00Z")
    assert execution.trigger_source == f"schedule:scheduler of workflow {workflow.name} (#{workflow.pk})"
    assert execution.triggered_by is None
    event = AuditEvent.objects.get(action="execution.triggered")
    assert event.actor_label == f"scheduler of workflow {workflow.name} (#{workflow.pk})"
    assert event.data["kind"] == "schedule"
    assert drain(execution) == ["succeeded"]
    assert schedules.schedules_start_due(now=at + timedelta(days=1)) == 1  # the next day's slot
    assert Execution.objects.filter(workflow=workflow).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_beats_ticking_at_once_start_one_run():
    """Two threads on their own connections tick the same slot at the same moment: one run."""
    from unittest import mock

    from tests.conftest import build_world
    from tests.workflows.conftest import BUSINESS_HOURS, shop

    with (
        mock.patch("governance.access.policies.timezone.now", return_value=BUSINESS_HOURS),
        mock.patch("workflows.executions.services._dispatch"),  # no worker: the rows stay pending
    ):
        world = shop.__wrapped__(build_world())
        workflow = scheduled(world)
        at = datetime(2026, 12, 4, 6, 0, 5, tzinfo=BERLIN)
        barrier, errors = threading.Barrier(2), []

        def tick():
            try:
                barrier.wait(timeout=10)
                schedules.schedules_start_due(now=at)
            except Exception as error:
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=tick) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert Execution.objects.filter(workflow=workflow).count() == 1


def test_a_halted_workspace_or_quarantined_workflow_starts_no_scheduled_run(shop):
    workflow = scheduled(shop)
    halt = halts.halt_raise(actor=shop.users["compliance_officer"], workspace=shop.ws, reason="INC")
    at = datetime(2026, 12, 4, 6, 0, 20, tzinfo=BERLIN)
    assert schedules.schedules_start_due(now=at) == 0
    refused = AuditEvent.objects.get(action="execution.refused")
    assert refused.data["kind"] == "schedule"
    halts.halt_release(actor=shop.users["workspace_owner"], halt=halt, reason="ok")
    changes.workflow_set_status(
        actor=shop.users["compliance_officer"],
        workflow=workflow,
        status=WorkflowStatus.QUARANTINED,
        reason="x",
    )
    assert schedules.schedules_start_due(now=at) == 0
    assert not Execution.objects.exists()


def test_the_scheduler_may_trigger_its_workspace_only(shop):
    workflow = scheduled(shop)
    principal = WorkflowTriggerPrincipal.of(workflow, "scheduler")
    assert decide(principal, "execution.trigger", workflow).allowed
    assert not decide(principal, "execution.trigger", shop.workflows["sibling"]).allowed
    assert not decide(principal, "execution.trigger", shop.workflows["foreign"]).allowed
    assert not decide(principal, "workflow.edit", workflow).allowed
    assert not decide(principal, "execution.halt", shop.ws).allowed


def test_a_manual_workflow_is_never_scheduled(shop):
    active_workflow(shop)
    assert schedules.schedules_start_due(now=datetime(2026, 12, 4, 6, 0, 20, tzinfo=BERLIN)) == 0
    assert not Execution.objects.exists()


def test_one_workflow_that_fails_to_start_does_not_stop_the_others(shop):
    from unittest import mock

    first = scheduled(shop, slug="first")
    second = scheduled(shop, slug="second")
    real = schedules.execution_trigger

    def failing_for_first(**kwargs):
        if kwargs["workflow"].pk == first.pk:
            raise RecursionError("a schedule gone wrong")
        return real(**kwargs)

    with mock.patch.object(schedules, "execution_trigger", side_effect=failing_for_first):
        assert schedules.schedules_start_due(now=datetime(2026, 12, 4, 6, 0, 20, tzinfo=BERLIN)) == 1
    assert Execution.objects.filter(workflow=second).count() == 1
