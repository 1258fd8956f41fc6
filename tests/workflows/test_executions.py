"""Executions: approved versions run step by step, every state change with its ledger events,
halted by a quarantine, stopped by an operator, and refused when they must be."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from unittest import mock

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from governance.access.decision import AccessDenied
from governance.crypto.keyring import forget_keys
from tests.conftest import member
from tests.factories import UserFactory
from tests.workflows.test_outbound import _Handler, loopback_allowed, pki, server  # noqa: F401 (fixtures)
from workflows.changes import services as changes
from workflows.changes.models import WorkflowStatus
from workflows.credentials import services as credentials
from workflows.executions import selectors, services, tasks
from workflows.executions.expressions import ExpressionError, evaluate
from workflows.executions.models import Execution, ExecutionStatus, StepRun, StepStatus
from workflows.executions.steps import StepOutcome, http_request, run_step
from workflows.executions.tasks import step_run_execute, steps_due_dispatch
from workflows.integrations.models import Integration, NetworkAllowRule
from workflows.integrations.outbound.client import IntegrationClient
from workflows.service_accounts.models import ServiceAccount

SCORING = {
    "trigger": {"type": "manual"},
    "steps": [
        {"id": "score", "type": "transform", "expression": "input.amount * 2", "next": "route"},
        {"id": "route", "type": "branch", "condition": "prev > 10", "then": "big", "else": "small"},
        {"id": "big", "type": "transform", "expression": "{'size': 'big', 'score': steps.score}", "next": None},
        {"id": "small", "type": "transform", "expression": "{'size': 'small'}", "next": None},
    ],
}  # fmt: skip


def active_workflow(world, definition=None, *, slug="scoring"):
    """A workflow whose first version went through review and is active."""
    change = changes.workflow_create(
        actor=world.users["workflow_builder"], workspace=world.ws, name=f"Workflow {slug}", slug=slug,
        environment="staging", data_region="EU", handles_pii=False, definition=definition or SCORING,
        summary="First version",
    )  # fmt: skip
    change = changes.change_request_submit(actor=world.users["workflow_builder"], change=change)
    reviewers = [world.users["compliance_officer"], world.second_officer]
    for reviewer, tier in zip(reviewers, [t["code"] for t in change.required_tiers], strict=False):
        change = changes.change_request_decide(
            actor=reviewer, change=change, tier=tier, approve=True, comment="ok"
        )
    change.workflow.refresh_from_db()
    assert change.workflow.status == WorkflowStatus.ACTIVE
    return change.workflow


def drain(execution) -> list[str]:
    """Deliver every open step run of ``execution`` until none is left, as a worker would."""
    results = []
    for _ in range(20):
        open_runs = list(
            StepRun.objects.filter(execution=execution, status=StepStatus.PENDING).values_list(
                "pk", flat=True
            )
        )
        if not open_runs:
            break
        results += [step_run_execute(str(pk)) for pk in open_runs]
    return results


def ledger(execution=None) -> list[str]:
    return list(
        AuditEvent.objects.filter(category="execution").order_by("id").values_list("action", flat=True)
    )


def trigger(world, workflow, payload=None, **kwargs) -> Execution:
    return services.execution_trigger(
        actor=world.users["workflow_operator"], workflow=workflow, input=payload or {"amount": 7}, **kwargs
    )


def test_a_three_step_run_succeeds_with_its_ledger_events_in_order(shop):
    """GIVEN an active transform → branch → transform workflow WHEN an operator triggers it and the
    steps are delivered THEN it succeeds on the pinned version, the branch took the right edge, and
    the ledger holds each state change in order."""
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow, {"amount": 7})
    assert execution.version_id == workflow.active_version_id
    assert execution.status == ExecutionStatus.QUEUED
    assert drain(execution) == ["succeeded", "succeeded", "succeeded"]
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert execution.finished_at is not None
    runs = list(execution.step_runs.order_by("created_at"))
    assert [(r.step_id, r.status) for r in runs] == [
        ("score", "succeeded"), ("route", "succeeded"), ("big", "succeeded"),
    ]  # fmt: skip
    assert json.loads(runs[2].outputs) == {"size": "big", "score": 14}
    assert ledger() == [
        "execution.triggered", "step.queued",
        "execution.started", "step.started", "step.succeeded", "step.queued",
        "step.started", "step.succeeded", "branch.decided", "step.queued",
        "step.started", "step.succeeded", "execution.finished",
    ]  # fmt: skip
    decided = AuditEvent.objects.get(action="branch.decided")
    assert decided.data["edge"] == "then"
    assert decided.data["value"] is True
    assert decided.workspace_id == shop.ws.pk


def test_the_other_edge_is_taken_when_the_condition_is_false(shop):
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow, {"amount": 2})
    drain(execution)
    assert list(execution.step_runs.order_by("created_at").values_list("step_id", flat=True)) == [
        "score", "route", "small",
    ]  # fmt: skip


def test_dispatch_after_commit_runs_the_whole_workflow(shop, django_capture_on_commit_callbacks):
    """GIVEN eager Celery WHEN the trigger commits THEN each step is dispatched after the commit of
    the step before it, and the run completes without anyone delivering by hand."""
    workflow = active_workflow(shop)
    with django_capture_on_commit_callbacks(execute=True):
        execution = trigger(shop, workflow)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert not execution.step_runs.filter(dispatched_at__isnull=True).exists()


def test_inputs_and_outputs_are_redacted_and_encrypted(shop):
    workflow = active_workflow(shop, {
        "trigger": {"type": "manual"},
        "steps": [{"id": "echo", "type": "transform", "expression": "input", "next": None}],
    })  # fmt: skip
    execution = trigger(
        shop, workflow, {"amount": 1, "password": "hunter2-very-secret", "note": "plain-marker"}
    )
    drain(execution)
    run = execution.step_runs.get()
    assert "hunter2-very-secret" not in run.inputs
    assert "hunter2-very-secret" not in run.outputs
    assert json.loads(run.outputs)["note"] == "plain-marker"
    with connection.cursor() as cursor:
        cursor.execute("SELECT inputs, outputs FROM workflows_steprun WHERE id = %s", [run.pk])
        raw_inputs, raw_outputs = cursor.fetchone()
    assert b"plain-marker" not in bytes(raw_inputs)
    assert b"plain-marker" not in bytes(raw_outputs)
    for event in AuditEvent.objects.filter(category="execution"):
        assert "plain-marker" not in json.dumps(event.data)


def test_a_second_delivery_records_nothing_twice(shop):
    """GIVEN a step that finished WHEN its message is delivered again, or a stale claim tries to
    finish THEN nothing is recorded a second time."""
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    first = execution.step_runs.get()
    claim = services.step_run_claim(step_run_id=first.pk)
    outcome = run_step(claim.step, claim.context)
    assert services.step_run_finish(claim=claim, outcome=outcome).status == StepStatus.SUCCEEDED
    assert services.step_run_finish(claim=claim, outcome=outcome) is None
    assert step_run_execute(str(first.pk)) == "skipped"
    assert AuditEvent.objects.filter(action="step.succeeded", target_id=str(first.pk)).count() == 1
    assert execution.step_runs.count() == 2  # the branch was queued once


@pytest.mark.django_db(transaction=True)
def test_two_workers_delivered_the_same_step_at_once_run_it_once():
    """GIVEN one step run delivered to two workers at the same moment WHEN both execute it THEN one
    runs it and the other finds nothing to do: one step.succeeded, one next step queued."""
    from tests.conftest import build_world
    from tests.workflows.conftest import BUSINESS_HOURS, shop

    with (
        mock.patch("governance.access.policies.timezone.now", return_value=BUSINESS_HOURS),
        mock.patch("workflows.executions.services._dispatch"),  # the workers here are the threads
    ):
        world = shop.__wrapped__(build_world())
        execution = trigger(world, active_workflow(world))
        first = execution.step_runs.get()
        barrier, outcomes = threading.Barrier(2), []

        def deliver():
            try:
                barrier.wait()
                outcomes.append(step_run_execute(str(first.pk)))
            finally:
                connection.close()

        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(outcomes) == ["skipped", "succeeded"]
    assert AuditEvent.objects.filter(action="step.succeeded", target_id=str(first.pk)).count() == 1
    assert execution.step_runs.count() == 2


FIVE_TRANSFORMS = {
    "trigger": {"type": "manual"},
    "steps": [
        {"id": f"t{n}", "type": "transform", "expression": f"input.amount + {n}", "next": f"t{n + 1}" if n < 5 else None}
        for n in range(1, 6)
    ],
}  # fmt: skip


@pytest.mark.django_db(transaction=True, databases=["default", "secrets"])
def test_a_transform_step_costs_a_fixed_number_of_statements_and_two_commits(settings):
    """GIVEN a five-step transform workflow, real transactions and production's cache of unwrapped
    data keys WHEN each step is delivered THEN it costs the same few SQL statements — claim: lock
    the run, lock the step with the halt check, lease, its events in one INSERT; finish: lock the
    run, lock the step with the halt check, result, next step, its events in one INSERT — and two
    commits, whatever the step's place (the first also starts the run; the last finishes it)."""
    from tests.conftest import build_world
    from tests.workflows.conftest import BUSINESS_HOURS, shop

    settings.CRYPTO_KEY_CACHE_SECONDS = 60
    forget_keys()
    try:
        with (
            mock.patch("governance.access.policies.timezone.now", return_value=BUSINESS_HOURS),
            mock.patch("workflows.executions.services._dispatch"),
        ):
            world = shop.__wrapped__(build_world())
            workflow = active_workflow(world, FIVE_TRANSFORMS, slug="five")
            trigger(world, workflow)  # the first run reads the data key and the version: cached now
            drain(Execution.objects.get())
            execution = trigger(world, workflow)
            statements, commits = [], []
            for _ in range(5):
                pending = execution.step_runs.get(status=StepStatus.PENDING)
                with CaptureQueriesContext(connection) as captured:
                    assert step_run_execute(str(pending.pk)) == StepStatus.SUCCEEDED
                sql = [query["sql"] for query in captured.captured_queries]
                statements.append(len([text for text in sql if text not in ("BEGIN", "COMMIT")]))
                commits.append(sql.count("COMMIT"))
    finally:
        forget_keys()
    # Claim 4 (+1 to start the run) and finish 5: see the docstring; a regression shows here.
    assert statements == [10, 9, 9, 9, 9], statements
    assert commits == [2] * 5
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED


def test_a_lapsed_lease_is_claimed_again_and_the_old_claim_cannot_finish(shop):
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    run = execution.step_runs.get()
    stale = services.step_run_claim(step_run_id=run.pk)
    assert services.step_run_claim(step_run_id=run.pk) is None  # held, lease not lapsed
    StepRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert run.pk in selectors.step_runs_to_dispatch(now=timezone.now())
    fresh = services.step_run_claim(step_run_id=run.pk)
    assert fresh.token != stale.token
    assert services.step_run_finish(claim=stale, outcome=run_step(stale.step, stale.context)) is None
    assert services.step_run_finish(claim=fresh, outcome=run_step(fresh.step, fresh.context)) is not None
    run.refresh_from_db()
    assert run.deliveries == 2
    assert AuditEvent.objects.filter(action="step.started", target_id=str(run.pk)).count() == 2
    assert AuditEvent.objects.filter(action="step.succeeded", target_id=str(run.pk)).count() == 1


def test_a_step_delivered_too_often_is_poisoned_and_the_run_fails(shop, settings):
    settings.EXECUTION_MAX_DELIVERIES = 2
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    run = execution.step_runs.get()
    StepRun.objects.filter(pk=run.pk).update(deliveries=2)
    assert step_run_execute(str(run.pk)) == "skipped"
    run.refresh_from_db()
    execution.refresh_from_db()
    assert (run.status, execution.status) == (StepStatus.POISONED, ExecutionStatus.FAILED)
    assert ledger()[-2:] == ["step.poisoned", "execution.finished"]


def test_a_retryable_failure_is_tried_again_when_due_then_the_run_goes_on(shop, monkeypatch):
    """GIVEN a step whose first attempt fails with a retryable error WHEN the sweep runs THEN the
    retry is a new row due later, sent only once due; it succeeds and the run continues."""
    calls = []

    def flaky(step, context, env=None):
        calls.append(step["id"])
        if len(calls) == 1:
            return StepOutcome.failed("HttpError", "HTTP 503 Service Unavailable from crm.", final=False)
        return run_step(step, context, env)

    monkeypatch.setattr(tasks, "run_step", flaky)
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    first = execution.step_runs.get()
    assert step_run_execute(str(first.pk)) == "retry_due"
    retry = execution.step_runs.get(attempt=2)
    assert (retry.step_id, retry.status) == ("score", StepStatus.PENDING)
    assert timezone.now() + timedelta(seconds=4) < retry.due_at < timezone.now() + timedelta(seconds=11)
    assert selectors.step_runs_to_dispatch(now=timezone.now()) == []  # not due yet
    assert step_run_execute(str(retry.pk)) == "skipped"  # an early message finds nothing to do
    StepRun.objects.filter(pk=retry.pk).update(due_at=timezone.now())
    assert drain(execution) == ["succeeded", "succeeded", "succeeded"]
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert ledger()[:8] == [
        "execution.triggered", "step.queued", "execution.started", "step.started", "step.failed",
        "step.retry_scheduled", "step.started", "step.succeeded",
    ]  # fmt: skip
    assert AuditEvent.objects.get(action="step.failed").data["retry"] is True


def test_a_step_past_its_soft_time_limit_fails_and_the_worker_goes_on(shop, monkeypatch):
    """GIVEN a runner stopped by Celery's soft time limit (e.g. a slow expression) WHEN the task
    ends THEN the step fails as TimeLimitExceeded, finally, and the run fails with it."""

    def slow(*args):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(tasks, "run_step", slow)
    execution = trigger(shop, active_workflow(shop))
    assert drain(execution) == ["failed"]
    assert execution.step_runs.get().error_class == "TimeLimitExceeded"


def test_retries_stop_at_the_attempt_limit(shop, monkeypatch, settings):
    settings.EXECUTION_MAX_ATTEMPTS = 2
    monkeypatch.setattr(
        tasks, "run_step", lambda *args: StepOutcome.failed("HttpError", "HTTP 502 Bad Gateway.", final=False)
    )
    execution = trigger(shop, active_workflow(shop))
    for attempt in (1, 2):
        StepRun.objects.filter(execution=execution, attempt=attempt).update(due_at=None)
        drain(execution)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert list(execution.step_runs.order_by("attempt").values_list("attempt", "status")) == [
        (1, "retry_due"), (2, "failed"),
    ]  # fmt: skip


def test_a_quarantine_halts_the_pending_step_and_no_step_starts_after_it(shop):
    """GIVEN a run whose first step finished and whose next is pending WHEN an officer quarantines
    the workflow THEN the pending step ends halted at its claim, the run is halted, and no step
    starts after the quarantine event."""
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    step_run_execute(str(execution.step_runs.get().pk))
    changes.workflow_set_status(
        actor=shop.users["compliance_officer"], workflow=workflow, status=WorkflowStatus.QUARANTINED,
        reason="Incident 42",
    )  # fmt: skip
    quarantined_at = AuditEvent.objects.filter(action="workflow.deactivated").latest("id").pk
    assert drain(execution) == ["skipped"]
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.HALTED
    assert execution.step_runs.get(step_id="route").status == StepStatus.HALTED
    assert not AuditEvent.objects.filter(action="step.started", id__gt=quarantined_at).exists()
    assert ledger()[-2:] == ["step.halted", "execution.halted"]
    assert not StepRun.objects.filter(execution=execution, status=StepStatus.PENDING).exists()


def test_a_quarantined_or_inactive_workflow_cannot_be_triggered(shop):
    workflow = active_workflow(shop)
    changes.workflow_set_status(
        actor=shop.users["compliance_officer"],
        workflow=workflow,
        status=WorkflowStatus.QUARANTINED,
        reason="x",
    )
    with pytest.raises(ValidationError, match="quarantined"):
        trigger(shop, workflow)
    changes.workflow_set_status(
        actor=shop.users["workspace_owner"], workflow=workflow, status=WorkflowStatus.INACTIVE, reason="y"
    )
    with pytest.raises(ValidationError, match="only active workflows run"):
        trigger(shop, workflow)
    assert not Execution.objects.exists()


def test_cancel_stops_the_run_and_its_waiting_step(shop):
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    with pytest.raises(ValidationError, match="Say why"):
        services.execution_cancel(actor=shop.users["workflow_operator"], execution=execution, reason=" ")
    with pytest.raises(AccessDenied):
        services.execution_cancel(actor=shop.users["viewer"], execution=execution, reason="no")
    services.execution_cancel(
        actor=shop.users["workflow_operator"], execution=execution, reason="Wrong input"
    )
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED
    assert execution.step_runs.get().status == StepStatus.CANCELLED
    assert drain(execution) == []
    cancelled = AuditEvent.objects.get(action="operator.cancelled")
    assert cancelled.actor_id == shop.users["workflow_operator"].pk
    assert cancelled.data["reason"] == "Wrong input"
    with pytest.raises(ValidationError, match="cancelled"):
        services.execution_cancel(actor=shop.users["workflow_operator"], execution=execution, reason="again")


def test_a_step_in_flight_when_cancelled_records_its_result_and_nothing_follows(shop):
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    claim = services.step_run_claim(step_run_id=execution.step_runs.get().pk)
    services.execution_cancel(actor=shop.users["workflow_operator"], execution=execution, reason="Stop")
    services.step_run_finish(claim=claim, outcome=run_step(claim.step, claim.context))
    assert execution.step_runs.count() == 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED


def test_a_bad_expression_fails_the_step_cleanly(shop):
    workflow = active_workflow(shop, {
        "trigger": {"type": "manual"},
        "steps": [{"id": "broken", "type": "transform", "expression": "input.amount +* (", "next": None}],
    })  # fmt: skip
    execution = trigger(shop, workflow)
    assert drain(execution) == ["failed"]
    run = execution.step_runs.get()
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert run.error_class == "ExpressionError"
    assert run.error_message.startswith("The expression does not parse")
    failed = AuditEvent.objects.get(action="step.failed")
    assert failed.data["error_class"] == "ExpressionError"
    assert failed.data["final"] is True


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"id": "route", "type": "branch", "condition": "input.amount", "then": "a", "else": "a"},
         "must be true or false"),
        ({"id": "route", "type": "transform", "expression": "input.nothing_here", "next": None},
         "no such member"),
        ({"id": "route", "type": "transform", "expression": "1 / 0", "next": None}, "divide by zero"),
    ],
)  # fmt: skip
def test_runner_failures_are_typed_and_final(step, message):
    outcome = run_step(step, {"input": {"amount": 3}, "steps": {}, "prev": None})
    assert not outcome.ok
    assert outcome.final
    assert message in outcome.error_message


def test_an_unapproved_version_cannot_be_triggered(shop):
    """GIVEN a workflow whose only version awaits review, and an active one with a newer version
    in review WHEN either is triggered on a version that is not the active, approved one THEN refused."""
    draft = changes.workflow_create(
        actor=shop.users["workflow_builder"], workspace=shop.ws, name="Draft", slug="draft",
        environment="staging", data_region="EU", handles_pii=False, definition=SCORING, summary="v1",
    )  # fmt: skip
    with pytest.raises(ValidationError, match="only active workflows run"):
        trigger(shop, draft.workflow)
    workflow = active_workflow(shop)
    newer = changes.workflow_version_create(
        actor=shop.users["workflow_builder"], workflow=workflow, definition=SCORING | {"steps": [SCORING["steps"][0] | {"next": None}]},
        base_version=workflow.active_version, summary="v2",
    )  # fmt: skip
    with pytest.raises(ValidationError, match="not the active version"):
        trigger(shop, workflow, version=newer.version)
    assert not Execution.objects.exists()


def test_a_viewer_cannot_trigger(shop):
    workflow = active_workflow(shop)
    with pytest.raises(AccessDenied):
        services.execution_trigger(actor=shop.users["viewer"], workflow=workflow, input={"amount": 1})
    assert not Execution.objects.exists()


def test_another_organisations_workflow_and_runs_are_invisible(shop):
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    outsider = UserFactory(organization=shop.foreign_org, email="operator@other.test", region="EU")
    member(outsider, "workflow_operator", shop.foreign)
    with pytest.raises(AccessDenied):
        services.execution_trigger(actor=outsider, workflow=workflow, input={"amount": 1})
    assert not selectors.executions_visible_to(outsider).exists()
    assert not selectors.step_runs_visible_to(outsider).exists()
    assert list(selectors.executions_visible_to(shop.users["viewer"])) == [execution]
    # The platform administrator, not a member of the workspace, sees no execution data either.
    assert not selectors.executions_visible_to(shop.users["platform_admin"]).exists()
    assert not selectors.step_runs_visible_to(shop.users["platform_admin"]).exists()


def test_bad_input_is_refused_clearly(shop):
    workflow = active_workflow(shop)
    for payload, message in (
        (["a"], "JSON object"),
        ({"a": "x\x00"}, "input"),
        ({"n": float("nan")}, "n: NaN and Infinity are not JSON numbers"),
    ):
        with pytest.raises(ValidationError, match=message):
            services.execution_trigger(
                actor=shop.users["workflow_operator"], workflow=workflow, input=payload
            )
    with pytest.raises(ValidationError, match="Unknown trigger kind"):
        trigger(shop, workflow, kind="carrier-pigeon")
    deep: dict = {}
    for _ in range(5000):
        deep = {"d": deep}
    with pytest.raises(ValidationError, match="nests more than 64 levels"):
        trigger(shop, workflow, deep)
    with pytest.raises(ValidationError, match="idempotency_key"):
        trigger(shop, workflow, idempotency_key="a\x00b")
    assert not Execution.objects.exists()


def test_an_idempotency_key_returns_the_run_it_started(shop):
    workflow = active_workflow(shop)
    first = trigger(shop, workflow, idempotency_key="order-17")
    again = trigger(shop, workflow, idempotency_key="order-17")
    assert again.pk == first.pk
    assert ledger().count("execution.triggered") == 1


def test_the_sweep_sends_pending_rows_the_broker_refused(shop, django_capture_on_commit_callbacks):
    """GIVEN a trigger whose message the broker refused at commit WHEN the sweep runs THEN it sends
    the row, and the steps after it go out at their commits as usual."""
    workflow = active_workflow(shop)
    with (
        mock.patch.object(tasks.step_run_execute, "delay", side_effect=OSError("broker down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        execution = trigger(shop, workflow)
    first = execution.step_runs.get()
    assert (first.status, first.dispatched_at) == (StepStatus.PENDING, None)
    assert selectors.step_runs_to_dispatch(now=timezone.now()) == [first.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert steps_due_dispatch() == 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert steps_due_dispatch() == 0


def test_a_row_whose_message_never_left_is_sent_again_after_the_redispatch_delay(shop, settings):
    """A row is written as sent in the transaction that queues it; if the process stops between
    the commit and the send, the sweep sends it once ``EXECUTION_REDISPATCH_SECONDS`` passed."""
    execution = trigger(shop, active_workflow(shop))  # on_commit never fires inside the test's transaction
    first = execution.step_runs.get()
    assert first.dispatched_at is not None
    assert selectors.step_runs_to_dispatch(now=timezone.now()) == []
    later = timezone.now() + timedelta(seconds=settings.EXECUTION_REDISPATCH_SECONDS + 1)
    assert selectors.step_runs_to_dispatch(now=later) == [first.pk]


def test_every_write_of_a_run_is_named_by_an_engine_event(shop):
    """GIVEN a completed run WHEN the captures of its tables are compared with the events THEN each
    captured row is the target of an event of the same transaction (nothing falls to db.row_changed)."""
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    drain(execution)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_name, c.row_id FROM audit_rowchange c WHERE c.table_name IN "
            "('workflows_execution', 'workflows_steprun') AND NOT EXISTS (SELECT 1 FROM audit_auditevent e "
            "WHERE e.transaction_id = c.transaction_id AND e.target_id = c.row_id "
            "AND e.target_type = regexp_replace(c.table_name, '_', '.'))"
        )
        assert cursor.fetchall() == []
        cursor.execute("SELECT count(*) FROM audit_rowchange WHERE table_name = 'workflows_steprun'")
        assert cursor.fetchone()[0] > 0


# --- http_request: through the outbound client, with the pinned credential ------------------------

FETCH = {
    "trigger": {"type": "manual"},
    "steps": [
        {"id": "fetch", "type": "http_request", "integration": "crm", "method": "GET", "path": "/ok", "next": "shout"},
        {"id": "shout", "type": "transform", "expression": "prev.body + '!'", "next": None},
    ],
}  # fmt: skip


@pytest.fixture
def crm(shop, loopback_allowed, pki, server, monkeypatch):  # noqa: F811 (fixtures imported above)
    """The shop's CRM integration served by the local TLS server, with an API key; every request
    the steps send is noted in ``crm.sent``."""
    integration = Integration.objects.get(workspace=shop.ws, slug="crm")
    integration.endpoint_url = server.url("")
    integration.save(update_fields=["endpoint_url"])
    sent, bodies = [], []

    class Spy(IntegrationClient):
        def request(self, method, url, *, headers=None, body=None):
            sent.append((method, url, dict(headers or {})))
            bodies.append(body)
            return super().request(method, url, headers=headers, body=body)

    monkeypatch.setattr(
        http_request, "client_for", lambda i: Spy.for_integration(i, cadata=pki.ca_pem, timeout=5)
    )
    credential = credentials.credential_create(
        actor=shop.users["workspace_owner"], integration=integration, name="api_key", value="crm-key-version-one-1234"
    )  # fmt: skip
    integration.sent, integration.bodies, integration.credential = sent, bodies, credential
    return integration


@pytest.mark.django_db(databases=["default", "secrets"])
def test_an_http_request_step_calls_the_integration_and_records_the_data_touched(shop, crm):
    """GIVEN an integration behind the allow-list WHEN a run calls it THEN the request goes through
    the outbound client with the credential and a stable Idempotency-Key, the response feeds the
    next step, the ledger says what was accessed, and the key appears in no stored record."""
    workflow = active_workflow(shop, FETCH, slug="fetcher")
    execution = trigger(shop, workflow)
    assert drain(execution) == ["succeeded", "succeeded"]
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED
    fetch = execution.step_runs.get(step_id="fetch")
    assert json.loads(fetch.outputs) == {"status": 200, "body": "hello", "truncated": False}
    assert json.loads(execution.step_runs.get(step_id="shout").outputs) == "hello!"
    ((method, url, headers),) = crm.sent
    assert (method, url) == ("GET", crm.endpoint_url + "/ok")
    assert headers["Authorization"] == "Bearer crm-key-version-one-1234"
    assert headers["Idempotency-Key"] == f"{execution.pk}:fetch"
    assert _Handler.seen["/ok"] == "Bearer crm-key-version-one-1234"
    accessed = AuditEvent.objects.get(action="data.accessed")
    assert accessed.target_id == str(fetch.pk)
    assert {k: accessed.data[k] for k in ("integration", "method", "host", "status", "credential_version")} == {
        "integration": "crm", "method": "GET", "host": "127.0.0.1", "status": 200, "credential_version": 1,
    }  # fmt: skip
    for event in AuditEvent.objects.all():
        assert "crm-key-version-one" not in json.dumps(event.data)
    assert "crm-key-version-one" not in fetch.inputs + fetch.outputs


@pytest.mark.django_db(databases=["default", "secrets"])
def test_a_rotation_during_a_run_keeps_the_step_on_the_version_it_started_with(shop, crm):
    """GIVEN a step claimed with version 1 of the credential WHEN version 2 is promoted before the
    call THEN the step still calls with version 1 (in its grace period), and a later step would not."""
    workflow = active_workflow(shop, FETCH, slug="fetcher")
    execution = trigger(shop, workflow)
    claim = services.step_run_claim(step_run_id=execution.step_runs.get().pk)
    assert claim.env.pins == {
        "integration": crm.pk,
        "credential": {"id": str(crm.credential.pk), "version": 1},
    }
    owner = shop.users["workspace_owner"]
    staged = credentials.credential_stage(
        actor=owner, credential=crm.credential, value="crm-key-version-two-5678"
    )
    credentials.credential_promote(actor=owner, version=staged)
    outcome = run_step(claim.step, claim.context, claim.env)
    assert outcome.ok
    assert crm.sent[-1][2]["Authorization"] == "Bearer crm-key-version-one-1234"
    services.step_run_finish(claim=claim, outcome=outcome)
    later = trigger(shop, workflow, idempotency_key="after-rotation")
    drain(later)
    assert crm.sent[-1][2]["Authorization"] == "Bearer crm-key-version-two-5678"


@pytest.mark.django_db(databases=["default", "secrets"])
def test_an_http_4xx_is_a_final_failure_and_still_records_the_access(shop, crm):
    definition = {**FETCH, "steps": [FETCH["steps"][0] | {"path": "/nothing-here", "next": None}]}
    workflow = active_workflow(shop, definition, slug="fetcher")
    execution = trigger(shop, workflow)
    assert drain(execution) == ["failed"]
    run = execution.step_runs.get()
    assert (run.error_class, run.error_message) == ("HttpError", "HTTP 404 Not Found from 127.0.0.1.")
    assert AuditEvent.objects.get(action="data.accessed").data["status"] == 404
    assert AuditEvent.objects.get(action="step.failed").data["final"] is True


@pytest.mark.django_db(databases=["default", "secrets"])
def test_an_endpoint_outside_the_boundary_is_refused_finally(shop, crm):
    NetworkAllowRule.objects.all().delete()
    workflow = active_workflow(shop, FETCH, slug="fetcher")
    execution = trigger(shop, workflow)
    assert drain(execution) == ["failed"]
    run = execution.step_runs.get()
    assert run.error_class == "OutboundRefused"
    assert "loopback" in run.error_message
    assert crm.sent  # the client was asked, and refused before connecting
    assert AuditEvent.objects.filter(action="integration.outbound_refused").exists()
    assert not AuditEvent.objects.filter(action__startswith="data.").exists()


@pytest.mark.django_db(databases=["default", "secrets"])
def test_a_write_sends_the_value_of_its_body_expression_as_json(shop, crm):
    definition = {
        "trigger": {"type": "manual"},
        "steps": [
            {"id": "post", "type": "http_request", "integration": "crm", "method": "POST", "path": "/ok",
             "body": "{'amount': input.amount, 'note': 'Grüße \u202e'}", "next": None},
        ],
    }  # fmt: skip
    workflow = active_workflow(shop, definition, slug="poster")
    execution = trigger(shop, workflow, {"amount": 7})
    assert drain(execution) == ["succeeded"]
    ((method, _, headers),) = crm.sent
    assert (method, headers["Content-Type"]) == ("POST", "application/json")
    assert json.loads(crm.bodies[0]) == {"amount": 7, "note": "Grüße \u202e"}
    written = AuditEvent.objects.get(action="data.written")
    assert written.data["body_bytes"] == len(crm.bodies[0])


@pytest.mark.django_db(databases=["default", "secrets"])
def test_a_body_that_fails_or_is_too_large_is_a_final_failure_before_any_io(shop, crm):
    definition = {
        "trigger": {"type": "manual"},
        "steps": [
            {"id": "post", "type": "http_request", "integration": "crm", "method": "POST", "path": "/ok",
             "body": "input.missing.field", "next": None},
        ],
    }  # fmt: skip
    workflow = active_workflow(shop, definition, slug="poster")
    execution = trigger(shop, workflow, {"amount": 7})
    assert drain(execution) == ["failed"]
    assert execution.step_runs.get().error_class == "ExpressionError"
    big = {**definition, "steps": [definition["steps"][0] | {"body": " + ".join(["input.text"] * 5)}]}
    changes_of_big = active_workflow(shop, big, slug="big-poster")
    execution = trigger(shop, changes_of_big, {"text": "x" * 60_000})
    drain(execution)
    run = execution.step_runs.get()
    assert run.error_class == "RequestTooLarge"
    size = int(
        re.search(r"body is ([\d,]+) bytes; a step sends at most 262,144\.", run.error_message)[1].replace(
            ",", ""
        )
    )
    assert size > http_request.MAX_REQUEST_BYTES
    assert crm.sent == []


def test_only_post_put_and_patch_may_carry_a_body():
    from workflows.changes.definition import validate_definition

    step = {"id": "get", "type": "http_request", "integration": "crm", "method": "GET", "path": "/x",
            "body": "input", "next": None}  # fmt: skip
    errors = validate_definition({"trigger": {"type": "manual"}, "steps": [step]}, integrations={"crm": None})
    assert [(e.path, e.message) for e in errors] == [
        ("steps[0].body", "A GET request sends no body: only POST, PUT and PATCH do.")
    ]
    step["method"] = "PATCH"
    assert (
        validate_definition({"trigger": {"type": "manual"}, "steps": [step]}, integrations={"crm": None})
        == []
    )


@pytest.mark.parametrize(
    ("body", "ids"),
    [
        ({"id": 42, "name": "x"}, ["42"]),
        ([{"id": "a"}, {"id": "b"}, {"name": "no id"}, "text"], ["a", "b"]),
        ({"data": [{"id": 1}, {"id": True}, {"id": None}, {"id": ""}]}, ["1"]),
        ({"results": [{"id": "x" * 100}, {"id": "x" * 64}]}, ["x" * 64]),
        # What is not an id as systems of record write them is left out: it could be personal data.
        (
            {
                "data": [
                    {"id": "jane.doe@example.com"},
                    {"id": "a\u0000b"},
                    {"id": "Jane Doe"},
                    {"id": "INV-7:2"},
                ]
            },
            ["INV-7:2"],
        ),
        ({"items": [{"id": n} for n in range(500)]}, [str(n) for n in range(50)]),
        ("plain text", []),
        ({"id": {"nested": 1}}, []),
        (None, []),
    ],
)
def test_the_ledger_names_the_records_a_response_names(body, ids):
    assert http_request.record_ids(body) == ids


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
                    max_leaves=30))  # fmt: skip
def test_property_record_ids_never_fail_and_stay_bounded(body):
    ids = http_request.record_ids(body)
    assert len(ids) <= http_request.MAX_RECORD_IDS
    assert all(re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", found) for found in ids)


# --- Steps act as the integration's service account -------------------------------------------


@pytest.mark.django_db(databases=["default", "secrets"])
def test_a_step_acts_as_its_integrations_service_account(shop, crm):
    """The ledger names the account a call was made as, and the call restarts its dormancy clock."""
    account = ServiceAccount.objects.get(integration=crm)
    assert account.last_used_at is None
    workflow = active_workflow(shop, FETCH, slug="fetcher")
    execution = trigger(shop, workflow)
    assert drain(execution) == ["succeeded", "succeeded"]
    accessed = AuditEvent.objects.get(action="data.accessed")
    assert accessed.data["service_account"] == f"service account crm steps (#{account.pk})"
    assert accessed.data["service_account_id"] == account.pk
    account.refresh_from_db()
    assert account.last_used_at is not None


@pytest.mark.django_db(databases=["default", "secrets"])
@pytest.mark.parametrize(
    ("method", "scopes", "refused"),
    [
        ("GET", ["integrations:read"], False),
        ("POST", ["integrations:read"], True),
        ("POST", ["integrations:write"], False),
        ("GET", ["integrations:write"], True),  # writing does not imply reading
        ("GET", ["executions:trigger"], True),  # an API scope does not let steps through
    ],
)
def test_the_decision_point_decides_each_call_by_method_and_scope(shop, crm, method, scopes, refused):
    ServiceAccount.objects.filter(integration=crm).update(scopes=scopes)
    definition = {**FETCH, "steps": [FETCH["steps"][0] | {"method": method, "next": None}]}
    workflow = active_workflow(shop, definition, slug="fetcher")
    execution = trigger(shop, workflow)
    drain(execution)
    run = execution.step_runs.get()
    if refused:
        assert (run.status, run.error_class) == ("failed", "ServiceAccountRefused")
        wanted = "integration.read" if method == "GET" else "integration.write"
        assert f"refused {wanted}: none of its scopes grants this" in run.error_message
        assert crm.sent == []  # refused before any I/O
        assert AuditEvent.objects.get(action="step.failed").data["final"] is True
    else:
        assert run.error_class in ("", "HttpError")  # the demo server answers GET /ok only
        assert len(crm.sent) == 1


@pytest.mark.django_db(databases=["default", "secrets"])
def test_a_disabled_or_missing_service_account_stops_the_call(shop, crm):
    """The incident lever: disabling an integration's account stops every step through it."""
    workflow = active_workflow(shop, FETCH, slug="fetcher")
    ServiceAccount.objects.filter(integration=crm).update(
        is_active=False, disabled_reason="incident", disabled_at=timezone.now()
    )
    execution = trigger(shop, workflow)
    drain(execution)
    run = execution.step_runs.get()
    assert run.error_class == "ServiceAccountRefused"
    assert "the service account is disabled" in run.error_message
    ServiceAccount.objects.filter(integration=crm).delete()
    again = trigger(shop, workflow, idempotency_key="no-account")
    drain(again)
    run = again.step_runs.get()
    assert run.error_class == "ServiceAccountRefused"
    assert "has no service account" in run.error_message
    assert crm.sent == []


# --- The expression language, fuzzed ------------------------------------------------------------

_NAMES = {"input": {"amount": 3, "tags": ["a"], "who": {"name": "x"}}, "steps": {}, "prev": None}
_ATOMS = st.sampled_from(
    ["1", "2.5", "'s'", "true", "null", "input", "input.amount", "input.tags", "steps", "prev", "[1, 2]",
     "{'k': 1}", "b'x'", "-1", "0", "input.who.name", "size(input.tags)", "9223372036854775807"]
)  # fmt: skip
_OPS = st.sampled_from(["+", "-", "*", "/", "%", "==", "!=", "<", ">", "&&", "||", " in ", "."])


@st.composite
def _expressions(draw, depth=3):
    if depth == 0 or draw(st.booleans()):
        return draw(_ATOMS)
    form = draw(st.integers(0, 3))
    left, right = draw(_expressions(depth=depth - 1)), draw(_expressions(depth=depth - 1))
    if form == 0:
        return f"{left} {draw(_OPS)} {right}"
    if form == 1:
        return f"({left} ? {right} : {left})"
    if form == 2:
        return f"[{left}, {right}].map(x, x {draw(_OPS)} {right})"
    return f"!{left}"


def _json_roundtrips(value) -> bool:
    return json.loads(json.dumps(value, allow_nan=False)) == value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_expressions(), st.text(max_size=200)))
def test_an_expression_gives_json_or_the_typed_error(expression):
    """GIVEN any text WHEN evaluated THEN a JSON value comes back or ExpressionError, nothing else."""
    try:
        value = evaluate(expression, _NAMES)
    except ExpressionError as error:
        message = str(error)
    else:
        assert _json_roundtrips(value)
        return
    assert message.startswith(("The expression", "The value"))


@settings(max_examples=150, deadline=None)
@given(_expressions())
def test_a_branch_never_crashes(condition):
    outcome = run_step(
        {"id": "b", "type": "branch", "condition": condition, "then": "t", "else": "e"}, _NAMES
    )
    assert isinstance(outcome, StepOutcome)
    assert outcome.ok == (outcome.next_step in ("t", "e"))


@pytest.mark.parametrize(
    "path",
    ["/x@evil.example/y", "//evil.example/x", "/@evil.example", "/%2F%2Fevil.example", "/\\\\evil.example"],
)
def test_a_steps_path_never_names_another_host(path):
    from urllib.parse import urlsplit

    from workflows.executions.steps.http_request import step_url

    assert urlsplit(step_url("https://crm.example.com/api/", path)).hostname == "crm.example.com"


def test_a_path_without_its_leading_slash_is_refused():
    from workflows.executions.steps import StepError
    from workflows.executions.steps.http_request import step_url

    with pytest.raises(StepError):
        step_url("https://crm.example.com", "@evil.example/x")


def test_a_claim_that_keeps_failing_is_counted_and_poisoned(shop, settings):
    """GIVEN a step whose claim raises (rolling back its delivery count) WHEN it is delivered more
    than the limit THEN each delivery is counted in its own transaction and the step is poisoned."""
    settings.EXECUTION_MAX_DELIVERIES = 2
    execution = trigger(shop, active_workflow(shop))
    run = execution.step_runs.get()
    with mock.patch.object(services, "_pins", side_effect=RuntimeError("no data key")):
        # The third delivery is past the limit: the claim poisons the row before reaching _pins.
        assert [step_run_execute(str(run.pk)) for _ in range(3)] == [
            "claim_failed",
            "claim_failed",
            "skipped",
        ]
    run.refresh_from_db()
    execution.refresh_from_db()
    assert (run.status, run.deliveries) == (StepStatus.POISONED, 3)
    assert execution.status == ExecutionStatus.FAILED
    assert [
        e.data["delivery"] for e in AuditEvent.objects.filter(action="step.claim_failed").order_by("id")
    ] == [1, 2]


INPUT_CHECKED = {
    "input_schema": {
        "type": "object",
        "required": ["amount"],
        "properties": {
            "amount": {"type": "integer", "minimum": 1},
            "note": {"type": "string", "maxLength": 20},
        },
    },
    **SCORING,
}


def test_the_input_is_checked_against_the_versions_input_schema(shop):
    workflow = active_workflow(shop, INPUT_CHECKED, slug="checked")
    with pytest.raises(ValidationError) as refused:
        trigger(shop, workflow, {"amount": 0, "note": "x" * 30})
    assert refused.value.message_dict["input"] == [
        "input.amount: 0 is less than the minimum of 1",
        "input.note: Too long: at most 20 characters.",
    ]
    with pytest.raises(ValidationError, match="'amount' is a required property"):
        trigger(shop, workflow, {"note": "hi"})
    assert not Execution.objects.exists()
    assert trigger(shop, workflow, {"amount": 3}).status == ExecutionStatus.QUEUED


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {"type": "object", "properties": {"id": {"type": "string", "pattern": "^(a+)+$"}}},
            "'pattern' is not allowed",
        ),
        ({"type": "object", "patternProperties": {"^x": {}}}, "'patternProperties' is not allowed"),
        ({"$ref": "https://example.invalid/schema.json"}, "'$ref' is not allowed"),
        ({"type": "no-such-type"}, "Not a valid JSON Schema"),
        ({"$ref": "#"}, "'$ref' is not allowed"),
        ({"type": "array", "uniqueItems": True}, "'uniqueItems' is not allowed"),
        (
            {
                "anyOf": [
                    {
                        "anyOf": [
                            {
                                "anyOf": [
                                    {
                                        "anyOf": [
                                            {
                                                "anyOf": [
                                                    {"anyOf": [{"anyOf": [{"anyOf": [{"anyOf": [{}]}]}]}]}
                                                ]
                                            }
                                        ]
                                    }
                                ]
                            }
                        ]
                    }
                ]
            },
            "too deep or too large",
        ),
        ([], "is not of type 'object'"),
    ],
)
def test_an_input_schema_that_could_hurt_or_is_wrong_is_refused(schema, message):
    from workflows.changes.definition import validate_definition

    errors = validate_definition({**SCORING, "input_schema": schema}, integrations={})
    assert [error.path for error in errors] == ["input_schema"]
    assert message in errors[0].message


def test_an_input_nested_too_deep_is_refused_on_its_field(shop):
    deep: dict = {}
    node = deep
    for _ in range(70):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(ValidationError, match="nests more than 64 levels"):
        trigger(shop, active_workflow(shop), {"amount": 1, "deep": deep})
