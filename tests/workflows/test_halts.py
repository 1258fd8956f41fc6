"""Halts: the incident stop of a workspace or an organisation, and the two-person release.

From the moment a halt commits no step of a run in its scope starts and no trigger is accepted;
the runs end ``halted`` (a step in flight first records its result); a second person releases
the halt; an operator resumes each halted run, and retries a failed one, on purpose.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit.models import AuditEvent
from governance.access.decision import AccessDenied
from tests.workflows.test_executions import SCORING, active_workflow, drain, ledger, trigger
from workflows.changes import services as changes
from workflows.changes.models import WorkflowStatus
from workflows.executions import halts, selectors, services, tasks
from workflows.executions.models import ExecutionStatus, Halt, StepRun, StepStatus
from workflows.executions.steps import StepOutcome
from workflows.executions.tasks import step_run_execute


def _halt_workspace(world, who="compliance_officer", reason="INC-7: leaked token"):
    return halts.halt_raise(actor=world.users[who], workspace=world.ws, reason=reason)


def _release(world, halt, who="workspace_owner"):
    return halts.halt_release(actor=world.users[who], halt=halt, reason="Token rotated")


def _operator(world):
    return world.users["workflow_operator"]


def test_a_workspace_halt_stops_every_run_and_no_step_starts_after_it(shop):
    """GIVEN two runs of two workflows of a workspace, one with a step done WHEN an officer halts
    the workspace THEN the enforcement marks both runs halted with their pending steps, the
    delivered messages find nothing to run, and no step.started follows halt.raised."""
    first = active_workflow(shop)
    second = active_workflow(shop, slug="second")
    one, two = trigger(shop, first), trigger(shop, second)
    step_run_execute(str(one.step_runs.get().pk))  # one step done, the next pending
    halt = _halt_workspace(shop)
    raised = AuditEvent.objects.get(action="halt.raised")
    assert raised.data == {"scope": "workspace", "reason": "INC-7: leaked token"}
    assert tasks.halts_enforce() == 2
    for run in (one, two):
        run.refresh_from_db()
        assert run.status == ExecutionStatus.HALTED
        assert not run.step_runs.filter(status=StepStatus.PENDING).exists()
    assert drain(one) == []
    assert drain(two) == []
    assert not AuditEvent.objects.filter(action="step.started", id__gt=raised.pk).exists()
    halted = AuditEvent.objects.filter(action="execution.halted", id__gt=raised.pk)
    assert sorted(event.data["steps"] for event in halted) == [["route"], ["score"]]
    assert {event.data["halt"] for event in halted} == {halt.pk}
    assert tasks.halts_enforce() == 0  # nothing left to do


def test_a_step_delivered_under_a_halt_is_halted_at_its_claim(shop):
    """Without the enforcement task (the broker lost it), the claim itself stops the step."""
    execution = trigger(shop, active_workflow(shop))
    _halt_workspace(shop)
    assert drain(execution) == ["skipped"]
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.HALTED
    assert ledger()[-2:] == ["step.halted", "execution.halted"]
    step = AuditEvent.objects.get(action="step.halted")
    assert step.data["scope"] == "workspace"


def test_a_step_in_flight_records_its_result_then_the_run_halts_at_the_boundary(shop):
    """GIVEN a step claimed by a worker WHEN the workspace is halted THEN the enforcement leaves that
    run alone; when the step finishes, its result is recorded, the next step is queued and halted
    at once (the place to resume), and the run is halted."""
    execution = trigger(shop, active_workflow(shop))
    claim = services.step_run_claim(step_run_id=execution.step_runs.get().pk)
    _halt_workspace(shop)
    assert selectors.executions_to_halt(now=claim_time()) == []
    assert tasks.halts_enforce() == 0
    services.step_run_finish(claim=claim, outcome=StepOutcome(output=14, next_step="route"))
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.HALTED
    runs = dict(execution.step_runs.values_list("step_id", "status"))
    assert runs == {"score": "succeeded", "route": "halted"}
    assert drain(execution) == []


def claim_time():
    from django.utils import timezone

    return timezone.now()


def test_an_organisation_halt_covers_every_workspace_and_only_platform_admins_raise_it(shop):
    workflow = active_workflow(shop)
    with pytest.raises(AccessDenied):
        halts.halt_raise(actor=shop.users["compliance_officer"], organization=shop.org, reason="x")
    halt = halts.halt_raise(actor=shop.users["platform_admin"], organization=shop.org, reason="Breach")
    assert (halt.scope, halt.workspace_id) == ("organization", None)
    with pytest.raises(services.TriggerHaltedError, match="whole organisation is halted"):
        trigger(shop, workflow)
    refused = AuditEvent.objects.get(action="execution.refused")
    assert refused.data == {"kind": "manual", "scope": "organization", "halt": halt.pk}
    assert refused.actor_id == _operator(shop).pk
    # A second platform administrator releases it; the first cannot.
    with pytest.raises(ValidationError, match="second person"):
        halts.halt_release(actor=shop.users["platform_admin"], halt=halt, reason="done")
    other = _second(shop, "platform_admin", organization=shop.org)
    halts.halt_release(actor=other, halt=halt, reason="Contained")
    assert trigger(shop, workflow).status == ExecutionStatus.QUEUED


def _second(world, role, **where):
    from tests.conftest import member
    from tests.factories import UserFactory

    user = UserFactory(organization=world.org, email=f"second-{role}@acme.test", region="EU")
    member(user, role, where.get("workspace"), organization=where.get("organization"))
    return user


def test_a_halt_of_another_workspace_or_organisation_changes_nothing_here(shop):
    workflow = active_workflow(shop)
    halts.halt_raise(
        actor=shop.sibling_membership.user.__class__.objects.get(email="owner@fin.acme.test"),
        workspace=shop.sibling,
        reason="Sibling incident",
    )
    halts.halt_raise(actor=shop.foreign_user, workspace=shop.foreign, reason="Their incident")
    execution = trigger(shop, workflow)
    assert tasks.halts_enforce() == 0
    assert drain(execution) == ["succeeded", "succeeded", "succeeded"]


def test_who_may_raise_a_workspace_halt(shop):
    for code in ("workflow_builder", "workflow_operator", "viewer", "auditor"):
        with pytest.raises(AccessDenied):
            halts.halt_raise(actor=shop.users[code], workspace=shop.ws, reason="x")
    with pytest.raises(AccessDenied):  # another organisation's workspace
        halts.halt_raise(actor=shop.users["compliance_officer"], workspace=shop.foreign, reason="x")
    halt = halts.halt_raise(actor=shop.users["platform_admin"], workspace=shop.ws, reason="x")
    assert halt.scope == "workspace"
    assert not Halt.objects.filter(workspace=shop.foreign).exists()


def test_the_release_takes_a_second_person_even_in_the_database(shop):
    halt = _halt_workspace(shop)
    with pytest.raises(ValidationError, match="second person"):
        _release(shop, halt, who="compliance_officer")
    with pytest.raises(ValidationError, match="Say why"):
        halts.halt_release(actor=shop.users["workspace_owner"], halt=halt, reason="  ")
    with pytest.raises(AccessDenied):
        _release(shop, halt, who="workflow_operator")
    # Written past the service, the database refuses it too.
    with pytest.raises(IntegrityError), transaction.atomic():
        Halt.objects.filter(pk=halt.pk).update(
            released_by=shop.users["compliance_officer"], released_at=claim_time()
        )
    _release(shop, halt)
    released = AuditEvent.objects.get(action="halt.released")
    assert released.actor_id == shop.users["workspace_owner"].pk
    assert released.data["raised_by"] == shop.users["compliance_officer"].pk
    with pytest.raises(ValidationError, match="Already released"):
        _release(shop, halt, who="platform_admin")


def test_one_active_halt_per_scope_and_a_reason_is_required(shop):
    with pytest.raises(ValidationError, match="Say why"):
        _halt_workspace(shop, reason=" ")
    with pytest.raises(ValidationError, match="workspace, or the whole organisation"):
        halts.halt_raise(actor=shop.users["platform_admin"], reason="x")
    halt = _halt_workspace(shop)
    with pytest.raises(ValidationError, match="Already halted"):
        _halt_workspace(shop, who="workspace_owner")
    with pytest.raises(IntegrityError), transaction.atomic():
        Halt.objects.create(
            organization=shop.org, workspace=shop.ws, scope="workspace", reason="y",
            raised_by=shop.users["workspace_owner"],
        )  # fmt: skip
    _release(shop, halt)
    assert _halt_workspace(shop, who="workspace_owner").pk != halt.pk  # a new one after release


def test_a_halted_run_resumes_only_after_release_and_by_an_operator(shop):
    """GIVEN a run halted before its second step WHEN the halt is released and an operator resumes
    it with a reason THEN the stopped step runs again as a new attempt and the run succeeds."""
    execution = trigger(shop, active_workflow(shop))
    step_run_execute(str(execution.step_runs.get().pk))
    halt = _halt_workspace(shop)
    tasks.halts_enforce()
    with pytest.raises(ValidationError, match="must be released first"):
        services.execution_resume(actor=_operator(shop), execution=execution, reason="go")
    _release(shop, halt)
    with pytest.raises(ValidationError, match="Say why"):
        services.execution_resume(actor=_operator(shop), execution=execution, reason="")
    with pytest.raises(AccessDenied):
        services.execution_resume(actor=shop.users["viewer"], execution=execution, reason="go")
    services.execution_resume(actor=_operator(shop), execution=execution, reason="INC-7 closed")
    resumed = AuditEvent.objects.get(action="operator.resumed")
    assert resumed.data == {"reason": "INC-7 closed", "steps": ["route"]}
    assert drain(execution) == ["succeeded", "succeeded"]
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert list(execution.step_runs.filter(step_id="route").values_list("attempt", "status")) == [
        (1, "halted"), (2, "succeeded"),
    ]  # fmt: skip
    with pytest.raises(ValidationError, match="not possible now"):
        services.execution_resume(actor=_operator(shop), execution=execution, reason="again")


def test_a_quarantine_is_lifted_by_a_second_person_and_its_runs_resume(shop):
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    officer = shop.users["compliance_officer"]
    changes.workflow_set_status(
        actor=officer, workflow=workflow, status=WorkflowStatus.QUARANTINED, reason="INC-8"
    )
    assert tasks.halts_enforce() == 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.HALTED
    with pytest.raises(ValidationError, match="second person"):
        changes.workflow_set_status(
            actor=officer, workflow=workflow, status=WorkflowStatus.ACTIVE, reason="ok"
        )
    with pytest.raises(ValidationError, match="quarantined"):
        services.execution_resume(actor=_operator(shop), execution=execution, reason="go")
    changes.workflow_set_status(
        actor=shop.second_officer, workflow=workflow, status=WorkflowStatus.ACTIVE, reason="INC-8 closed"
    )
    services.execution_resume(actor=_operator(shop), execution=execution, reason="INC-8 closed")
    assert drain(execution) == ["succeeded", "succeeded", "succeeded"]


def test_a_run_of_a_version_no_longer_active_is_not_resumed(shop):
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    halt = _halt_workspace(shop)
    tasks.halts_enforce()
    _release(shop, halt)
    version = workflow.active_version
    other = version.__class__.objects.create(
        workflow=workflow, number=version.number + 1, definition=SCORING, content_hash="x" * 64,
        created_by=shop.users["workflow_builder"],
    )  # fmt: skip
    workflow.active_version = other
    workflow.save(update_fields=["active_version"])
    with pytest.raises(ValidationError, match="no longer the active version"):
        services.execution_resume(actor=_operator(shop), execution=execution, reason="go")


def test_an_operator_retries_a_failed_run_from_its_failed_step(shop):
    definition = {
        "trigger": {"type": "manual"},
        "steps": [
            {"id": "score", "type": "transform", "expression": "input.amount * 2", "next": "split"},
            {"id": "split", "type": "transform", "expression": "100 / input.divisor", "next": None},
        ],
    }
    execution = trigger(shop, active_workflow(shop, definition), {"amount": 1, "divisor": 0})
    drain(execution)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    with pytest.raises(AccessDenied):
        services.execution_retry(actor=shop.users["workflow_builder"], execution=execution, reason="x")
    services.execution_retry(actor=_operator(shop), execution=execution, reason="Fixed upstream")
    retried = AuditEvent.objects.get(action="operator.retried")
    assert retried.data == {"reason": "Fixed upstream", "steps": ["split"]}
    execution.refresh_from_db()
    assert (execution.status, execution.finished_at) == (ExecutionStatus.RUNNING, None)
    pending = StepRun.objects.get(execution=execution, status=StepStatus.PENDING)
    assert (pending.step_id, pending.attempt) == ("split", 2)
    assert pending.inputs_digest == execution.step_runs.get(step_id="split", attempt=1).inputs_digest
    assert drain(execution) == ["failed"]  # the same input fails the same way, visibly
    assert AuditEvent.objects.filter(action="execution.finished").count() == 2


def test_a_halted_run_may_be_cancelled_instead_of_resumed(shop):
    execution = trigger(shop, active_workflow(shop))
    _halt_workspace(shop)
    tasks.halts_enforce()
    services.execution_cancel(actor=_operator(shop), execution=execution, reason="Not needed any more")
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED


def test_open_runs_are_found_through_the_partial_index(shop):
    """The enforcement reads open runs only: with the table's other paths priced out, the plan for
    "open runs" is the partial index (it exists and its predicate matches the selector's states)."""
    from django.db import connection

    from workflows.executions.models import Execution

    query = Execution.objects.filter(status__in=selectors.OPEN_EXECUTION_STATES).values_list("pk", flat=True)
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "workflows_execution_open" in plan, plan


def test_an_officer_halts_the_workspace_in_the_control_panel_and_a_second_officer_releases_it(
    shop, client, django_capture_on_commit_callbacks
):
    """The control panel's pages: the choice lists only where I may halt; a missing reason keeps
    what was typed; the halt commits and its runs are halted by the task it sends; the raiser sees
    no release button and is refused; a second officer releases it."""
    from django.urls import reverse

    execution = trigger(shop, active_workflow(shop))
    officer = shop.users["compliance_officer"]
    client.force_login(officer)
    page = client.get(reverse("admin:workflows_halt_raise")).content.decode()
    assert "Workspace Ops EU" in page
    assert "Finance US" not in page
    assert "Globex" not in page
    assert "whole organisation" not in page  # officers halt workspaces, not the organisation
    typed = "INC-12 <script>alert(1)</script> Łódź ‮"
    missing = client.post(reverse("admin:workflows_halt_raise"), {"where": "", "reason": typed})
    assert missing.status_code == 200
    assert "This field is required" in missing.content.decode()
    assert "INC-12 &lt;script&gt;" in missing.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(reverse("admin:workflows_halt_raise"), {"where": str(shop.ws.pk), "reason": typed})
    halt = Halt.objects.get()
    assert done.status_code == 302
    assert done["Location"] == reverse("admin:workflows_halt_change", args=[halt.pk])
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.HALTED  # the enforcement ran after the commit
    own_page = client.get(done["Location"]).content.decode()
    assert "a second person releases it" in own_page
    assert "Release this halt" not in own_page
    alone = client.post(reverse("admin:workflows_halt_release", args=[halt.pk]), {"reason": "done"})
    assert "a second person must release it" in alone.content.decode()
    client.force_login(shop.second_officer)
    assert "Release this halt" in client.get(done["Location"]).content.decode()
    client.post(reverse("admin:workflows_halt_release", args=[halt.pk]), {"reason": "Contained"})
    halt.refresh_from_db()
    assert (halt.released_by, halt.release_reason) == (shop.second_officer, "Contained")


def test_a_platform_administrator_may_halt_the_whole_organisation_from_the_control_panel(shop, client):
    from django.urls import reverse

    client.force_login(shop.users["platform_admin"])
    page = client.get(reverse("admin:workflows_halt_raise")).content.decode()
    assert "The whole organisation (Acme)" in page
    client.post(reverse("admin:workflows_halt_raise"), {"where": "organization", "reason": "Breach"})
    halt = Halt.objects.get()
    assert (halt.scope, halt.organization_id, halt.workspace_id) == ("organization", shop.org.pk, None)
    # Forged: another organisation's workspace id is not among the choices.
    forged = client.post(
        reverse("admin:workflows_halt_raise"), {"where": str(shop.foreign.pk), "reason": "x"}
    )
    assert "Select a valid choice" in forged.content.decode()
    assert Halt.objects.count() == 1


def test_the_control_panel_index_shows_halts_approvals_and_the_last_days_runs(shop, client):
    from django.urls import reverse

    from tests.workflows.test_human_tasks import APPROVAL

    waiting = trigger(shop, active_workflow(shop, APPROVAL, slug="approval"))
    drain(waiting)  # waits for a compliance officer
    failed = trigger(shop, active_workflow(shop, {
        "trigger": {"type": "manual"},
        "steps": [{"id": "split", "type": "transform", "expression": "1 / 0", "next": None}],
    }, slug="broken"))  # fmt: skip
    drain(failed)
    halt = _halt_workspace(shop)
    client.force_login(shop.second_officer)
    page = client.get(reverse("admin:index")).content.decode()
    assert "Halts in force" in page
    assert reverse("admin:workflows_halt_change", args=[halt.pk]) in page
    assert "Approvals waiting for me" in page
    assert "Runs, last 24 hours" in page
    assert "Ops EU</th><td>2</td>" in page
    assert "Failed 1" in page
    assert "Waiting 1" in page
    client.force_login(shop.users["platform_admin"])  # halts yes, no execution data
    page = client.get(reverse("admin:index")).content.decode()
    assert "Halts in force" in page
    assert "Runs, last 24 hours" not in page
    assert "Approvals waiting for me" not in page


def test_an_operator_resumes_a_halted_run_on_its_page_and_retries_a_failed_one_through_the_api(shop, client):
    from django.urls import reverse
    from rest_framework.test import APIClient

    execution = trigger(shop, active_workflow(shop))
    halt = _halt_workspace(shop)
    tasks.halts_enforce()
    operator = _operator(shop)
    client.force_login(operator)
    page = client.get(reverse("run-detail", args=[execution.pk])).content.decode()
    assert "Resume after the halt" in page
    refused = client.post(reverse("run-resume", args=[execution.pk]), {"reason": "go"})
    assert "must be released first" in refused.content.decode()
    _release(shop, halt)
    assert (
        "This field is required"
        in client.post(reverse("run-resume", args=[execution.pk]), {}).content.decode()
    )
    done = client.post(reverse("run-resume", args=[execution.pk]), {"reason": "INC closed"})
    assert done.status_code == 302
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.RUNNING
    client.force_login(shop.users["viewer"])
    assert "Resume after" not in client.get(reverse("run-detail", args=[execution.pk])).content.decode()
    assert client.post(reverse("run-resume", args=[execution.pk]), {"reason": "x"}).status_code == 403

    failing = trigger(shop, active_workflow(shop, {
        "trigger": {"type": "manual"},
        "steps": [{"id": "split", "type": "transform", "expression": "1 / 0", "next": None}],
    }, slug="broken"))  # fmt: skip
    drain(failing)
    api = APIClient()
    api.force_authenticate(operator)
    answer = api.post(reverse("api-execution-retry", args=[failing.pk]), {"reason": "fixed"}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "running"
    again = api.post(reverse("api-execution-retry", args=[failing.pk]), {"reason": "twice"}, format="json")
    assert again.status_code == 400


@pytest.mark.parametrize("bad", ["INC\x00-1", "INC \ud800", "x" * 2001])
def test_an_unstorable_or_overlong_reason_is_a_field_error_everywhere(shop, bad):
    """Reasons and comments go through one check: NUL, a lone surrogate or 2,001 characters are a
    field error for halts, cancels and resumes alike, never a database error."""
    execution = trigger(shop, active_workflow(shop))
    calls = (
        lambda: _halt_workspace(shop, reason=bad),
        lambda: services.execution_cancel(actor=_operator(shop), execution=execution, reason=bad),
        lambda: services.execution_resume(actor=_operator(shop), execution=execution, reason=bad),
    )
    for call in calls:
        with pytest.raises(ValidationError) as refused:
            call()
        assert list(refused.value.message_dict) == ["reason"]
    assert not Halt.objects.exists()
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED
