"""human_approval steps: the run waits without a worker for a person of the named role, who is
never the one who triggered it; approval goes on, rejection and (by default) the deadline fail the
run; halts freeze the task, cancellation closes it."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from governance.access.decision import AccessDenied
from tests.workflows.test_executions import active_workflow, drain, ledger, trigger
from workflows.executions import halts, services, tasks
from workflows.executions.models import ExecutionStatus, HumanTask, StepRun, StepStatus

APPROVAL = {
    "trigger": {"type": "manual"},
    "steps": [
        {"id": "score", "type": "transform", "expression": "input.amount * 2", "next": "ask"},
        {"id": "ask", "type": "human_approval", "approver_role": "compliance_officer", "next": "pay"},
        {
            "id": "pay",
            "type": "transform",
            "expression": "{'paid': steps.score, 'ok': prev.approved}",
            "next": None,
        },
    ],
}


def waiting_run(world, definition=None):
    execution = trigger(world, active_workflow(world, definition or APPROVAL, slug="approval"))
    assert drain(execution) == ["succeeded", "waiting"]
    execution.refresh_from_db()
    return execution


def test_the_run_waits_for_the_role_without_holding_a_worker(shop):
    execution = waiting_run(shop)
    assert execution.status == ExecutionStatus.WAITING
    task = HumanTask.objects.get()
    assert (task.approver_role, task.status, task.on_timeout) == ("compliance_officer", "open", "reject")
    assert abs((task.due_at - task.created_at) - timedelta(hours=72)) < timedelta(seconds=5)
    run = task.step_run
    assert (run.status, run.lease_until) == (StepStatus.WAITING, None)  # no worker holds it
    assert not StepRun.objects.filter(status__in=["pending", "running"]).exists()
    assert ledger()[-3:] == ["step.waiting", "human_task.requested", "execution.waiting"]


def test_an_officer_approves_and_the_run_goes_on_with_the_decision(shop):
    execution = waiting_run(shop)
    task = HumanTask.objects.get()
    services.human_task_decide(
        actor=shop.users["compliance_officer"], task=task, approve=True, comment="Fine"
    )
    task.refresh_from_db()
    assert (task.status, task.decided_by, task.comment) == (
        "approved",
        shop.users["compliance_officer"],
        "Fine",
    )
    assert drain(execution) == ["succeeded"]
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED
    import json

    assert json.loads(execution.step_runs.get(step_id="pay").outputs) == {"paid": 14, "ok": True}
    decided = AuditEvent.objects.get(action="human_task.decided")
    assert (decided.actor_id, decided.data["outcome"], decided.data["comment"]) == (
        shop.users["compliance_officer"].pk, "approved", True,
    )  # fmt: skip
    assert "Fine" not in json.dumps(decided.data)  # the comment stays on the task, not the ledger


def test_a_rejection_says_why_and_fails_the_run(shop):
    execution = waiting_run(shop)
    task = HumanTask.objects.get()
    with pytest.raises(ValidationError, match="Say why"):
        services.human_task_decide(actor=shop.second_officer, task=task, approve=False, comment=" ")
    services.human_task_decide(actor=shop.second_officer, task=task, approve=False, comment="Wrong vendor")
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    run = StepRun.objects.get(step_id="ask")
    assert (run.status, run.error_class, run.error_message) == ("failed", "Rejected", "Wrong vendor")
    with pytest.raises(ValidationError, match="nothing to decide"):
        services.human_task_decide(actor=shop.users["compliance_officer"], task=task, approve=True)


def test_only_the_named_role_decides_and_never_whoever_triggered_the_run(shop):
    execution = waiting_run(shop)
    task = HumanTask.objects.get()
    for code in ("workflow_operator", "workspace_owner"):  # may decide tasks, not this one's
        with pytest.raises(ValidationError, match="Only a person with the role compliance_officer"):
            services.human_task_decide(actor=shop.users[code], task=task, approve=True)
    for code in ("workflow_builder", "viewer"):  # may decide no task at all: the decision point says no
        with pytest.raises(AccessDenied, match="decide a run's approval"):
            services.human_task_decide(actor=shop.users[code], task=task, approve=True)
    with pytest.raises(AccessDenied):  # no execution data at all for a non-member administrator
        services.human_task_decide(actor=shop.users["platform_admin"], task=task, approve=True)
    with pytest.raises(AccessDenied):
        services.human_task_decide(actor=shop.foreign_user, task=task, approve=True)
    # An officer who triggered the run may not approve it.
    from tests.conftest import member

    officer = shop.users["compliance_officer"]
    member(officer, "workflow_operator", shop.sibling)  # unrelated; the rule is about the trigger
    execution.triggered_by = officer
    execution.save(update_fields=["triggered_by"])
    with pytest.raises(ValidationError, match="You triggered this run"):
        services.human_task_decide(actor=officer, task=task, approve=True)
    assert HumanTask.objects.get().status == "open"


def test_the_deadline_rejects_by_default_or_approves_when_the_step_says_so(shop):
    execution = waiting_run(shop)
    assert services.human_tasks_expire(now=timezone.now()) == 0
    later = timezone.now() + timedelta(hours=73)
    with mock.patch("workflows.executions.tasks.timezone.now", return_value=later):
        assert tasks.human_tasks_expire() == 1  # what the beat runs
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert StepRun.objects.get(step_id="ask", execution=execution).error_class == "TimedOut"
    assert HumanTask.objects.get(execution=execution).status == "timed_out"


def test_a_step_may_approve_on_timeout(shop):
    definition = {**APPROVAL, "steps": [dict(step) for step in APPROVAL["steps"]]}
    definition["steps"][1].update(timeout_hours=1, on_timeout="approve")
    execution = waiting_run(shop, definition)
    assert services.human_tasks_expire(now=timezone.now() + timedelta(minutes=61)) == 1
    assert drain(execution) == ["succeeded"]
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED


def test_a_halt_freezes_the_task_and_a_resume_asks_again(shop):
    execution = waiting_run(shop)
    halt = halts.halt_raise(actor=shop.users["compliance_officer"], workspace=shop.ws, reason="INC")
    assert tasks.halts_enforce() == 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.HALTED
    frozen = HumanTask.objects.get()
    assert frozen.status == "halted"
    with pytest.raises(ValidationError, match="frozen by a halt"):
        services.human_task_decide(actor=shop.second_officer, task=frozen, approve=True)
    halts.halt_release(actor=shop.users["workspace_owner"], halt=halt, reason="ok")
    services.execution_resume(actor=shop.users["workflow_operator"], execution=execution, reason="go on")
    assert drain(execution) == ["waiting"]
    assert HumanTask.objects.filter(status="open").count() == 1  # asked again, on the new attempt


def test_cancelling_the_run_closes_its_task(shop):
    execution = waiting_run(shop)
    services.execution_cancel(actor=shop.users["workflow_operator"], execution=execution, reason="Not needed")
    assert HumanTask.objects.get().status == "cancelled"
    assert AuditEvent.objects.filter(action="human_task.closed").count() == 1


def test_the_inbox_lists_what_waits_for_my_role_and_the_page_decides_it(shop, client):
    from django.urls import reverse

    execution = waiting_run(shop)
    task = HumanTask.objects.get()
    client.force_login(shop.users["workflow_operator"])  # not the role: nothing in the inbox
    assert "Nothing waits for you" in client.get(reverse("task-inbox")).content.decode()
    client.force_login(shop.second_officer)
    inbox = client.get(reverse("task-inbox")).content.decode()
    assert reverse("task-detail", args=[task.pk]) in inbox
    page = client.get(reverse("task-detail", args=[task.pk])).content.decode()
    assert "&quot;amount&quot;: 7" in page or '"amount": 7' in page  # what the step received
    hostile = "No <script>alert(1)</script> ‮"
    refused = client.post(reverse("task-detail", args=[task.pk]), {"decision": "reject", "comment": ""})
    assert "Say why you reject it" in refused.content.decode()
    done = client.post(reverse("task-detail", args=[task.pk]), {"decision": "reject", "comment": hostile})
    assert done.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.comment) == ("rejected", hostile)
    shown = client.get(reverse("task-detail", args=[task.pk])).content.decode()
    assert "&lt;script&gt;" in shown
    assert "<script>alert" not in shown
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED


def test_other_organisations_and_non_members_never_see_a_task(shop, client):
    from django.urls import reverse

    waiting_run(shop)
    task = HumanTask.objects.get()
    for user in (shop.foreign_user, shop.users["platform_admin"]):
        client.force_login(user)
        assert client.get(reverse("task-detail", args=[task.pk])).status_code == 404
        assert (
            reverse("task-detail", args=[task.pk]) not in client.get(reverse("task-inbox")).content.decode()
        )


def test_a_rejected_approval_is_final_and_whoever_made_a_run_go_on_may_not_approve_it(shop):
    execution = waiting_run(shop)
    task = HumanTask.objects.get()
    services.human_task_decide(actor=shop.second_officer, task=task, approve=False, comment="No")
    with pytest.raises(ValidationError, match="approval is final"):
        services.execution_retry(
            actor=shop.users["workflow_operator"], execution=execution, reason="ask again"
        )
    # A run an officer resumed (holding the operator role elsewhere is not needed: owners resume too).
    second = waiting_run_again(shop)
    halt = halts.halt_raise(actor=shop.users["compliance_officer"], workspace=shop.ws, reason="INC")
    tasks.halts_enforce()
    halts.halt_release(actor=shop.users["platform_admin"], halt=halt, reason="ok")
    from tests.conftest import member

    member(shop.second_officer, "workflow_operator", shop.sibling)  # irrelevant membership
    services.execution_resume(actor=shop.users["workspace_owner"], execution=second, reason="go on")
    drain(second)
    reopened = HumanTask.objects.get(status="open")
    from governance.tenancy.models import Membership

    Membership.objects.filter(user=shop.users["workspace_owner"], workspace=shop.ws).update(
        role_id="compliance_officer"
    )
    with pytest.raises(ValidationError, match="You made this run go on"):
        services.human_task_decide(actor=shop.users["workspace_owner"], task=reopened, approve=True)


def waiting_run_again(world):
    execution = trigger(world, HumanTask.objects.first().execution.workflow)
    assert drain(execution) == ["succeeded", "waiting"]
    execution.refresh_from_db()
    return execution
