"""/api/v1/executions: list runs (filters, newest-first keyset pages), read one with its step
attempts, start one (POST /api/v1/workflows/{id}/executions/), stop one — through the decision
point, with field-level refusals, and nothing of another workspace."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.workflows.test_executions import SCORING, active_workflow, drain, trigger
from workflows.executions.models import Execution, ExecutionStatus
from workflows.integrations.models import Integration
from workflows.service_accounts import services as service_accounts


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def start(client, workflow, body):
    return client.post(reverse("api-workflow-execution-list", args=[workflow.pk]), body, format="json")


def test_an_operator_starts_a_run_and_a_repeated_key_returns_it(shop):
    """GIVEN an active workflow WHEN an operator posts an input THEN 201 with the queued run and its
    first step (redacted input); the same idempotency key again THEN 200 with the same run, and
    the ledger holds one trigger."""
    workflow = active_workflow(shop)
    client = api(shop.users["workflow_operator"])
    body = {"input": {"amount": 7, "password": "hunter2-very-secret"}, "idempotency_key": "order-1"}
    first = start(client, workflow, body)
    assert first.status_code == 201, first.content
    run = first.json()
    assert (run["workflow"], run["status"], run["trigger_kind"]) == (workflow.pk, "queued", "manual")
    assert run["version"]["id"] == workflow.active_version_id
    assert run["triggered_by"] == "workflow_operator@acme.test"
    [step] = run["step_runs"]
    assert (step["step_id"], step["status"], step["attempt"]) == ("score", "pending", 1)
    assert step["inputs"]["input"]["amount"] == 7
    assert "hunter2-very-secret" not in first.content.decode()
    again = start(client, workflow, body)
    assert again.status_code == 200
    assert again.json()["id"] == run["id"]
    assert AuditEvent.objects.filter(action="execution.triggered").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "input"),
        ({"input": [1, 2]}, "input"),
        ({"input": "text"}, "input"),
        ({"input": {"a": 1}, "idempotency_key": "k" * 201}, "idempotency_key"),
    ],
)
def test_bad_input_is_a_field_level_400_and_starts_nothing(shop, body, field):
    workflow = active_workflow(shop)
    response = start(api(shop.users["workflow_operator"]), workflow, body)
    assert response.status_code == 400
    assert field in response.json()
    assert not Execution.objects.exists()


def test_refusals_of_the_service_are_field_level_and_roles_are_the_decision_points(shop):
    """GIVEN a draft workflow THEN starting it is a 400 naming the workflow; a viewer or builder
    may not start runs (403); another workspace's workflow is 404."""
    draft = shop.workflows["own"]
    response = start(api(shop.users["workflow_operator"]), draft, {"input": {}})
    assert response.status_code == 400
    assert "workflow" in response.json()
    workflow = active_workflow(shop)
    for role in ("viewer", "workflow_builder", "compliance_officer"):
        assert start(api(shop.users[role]), workflow, {"input": {}}).status_code == 403
    assert (
        start(api(shop.users["workflow_operator"]), shop.workflows["sibling"], {"input": {}}).status_code
        == 404
    )
    assert (
        start(api(shop.users["workflow_operator"]), shop.workflows["foreign"], {"input": {}}).status_code
        == 404
    )
    assert not Execution.objects.exists()


def test_the_list_is_newest_first_in_keyset_pages_and_filters(shop):
    workflow = active_workflow(shop)
    other = active_workflow(shop, slug="other")
    runs = [trigger(shop, workflow, {"amount": n}) for n in (1, 2, 3)]
    elsewhere = trigger(shop, other)
    drain(runs[0])
    client = api(shop.users["viewer"])
    page = client.get(reverse("api-execution-list"), {"workflow": workflow.pk, "page_size": 2}).json()
    assert [row["id"] for row in page["results"]] == [runs[2].pk, runs[1].pk]
    rest = client.get(page["next"]).json()
    assert [row["id"] for row in rest["results"]] == [runs[0].pk]
    assert rest["next"] is None
    everything = client.get(reverse("api-execution-list")).json()["results"]
    assert [row["id"] for row in everything] == [elsewhere.pk, runs[2].pk, runs[1].pk, runs[0].pk]
    done = client.get(reverse("api-execution-list"), {"status": "succeeded"}).json()["results"]
    assert [row["id"] for row in done] == [runs[0].pk]
    assert client.get(reverse("api-execution-list"), {"trigger_kind": "schedule"}).json()["results"] == []
    for name, value in (("status", "nope"), ("trigger_kind", "cron"), ("workflow", "x"), ("page_size", "0")):
        refused = client.get(reverse("api-execution-list"), {name: value})
        assert refused.status_code == 400
        assert name in refused.json()


def test_the_list_costs_the_same_few_queries_however_many_runs(shop, django_assert_max_num_queries):
    workflow = active_workflow(shop)
    for n in range(12):
        trigger(shop, workflow, {"amount": n})
    client = api(shop.users["viewer"])
    with django_assert_max_num_queries(8):
        response = client.get(reverse("api-execution-list"))
    assert len(response.json()["results"]) == 12


def test_a_run_reads_with_its_steps_durations_branch_and_redacted_io(shop):
    workflow = active_workflow(shop, SCORING)
    execution = trigger(shop, workflow, {"amount": 7, "api_key": "sk-should-not-show-0123456789"})
    drain(execution)
    response = api(shop.users["workflow_builder"]).get(reverse("api-execution-detail", args=[execution.pk]))
    assert response.status_code == 200
    run = response.json()
    assert run["status"] == "succeeded"
    assert run["duration_ms"] is not None
    steps = run["step_runs"]
    assert [step["step_id"] for step in steps] == ["score", "route", "big"]
    assert all(step["status"] == "succeeded" and step["duration_ms"] is not None for step in steps)
    assert steps[1]["outputs"] == {"value": True, "edge": "then"}
    assert steps[2]["outputs"] == {"size": "big", "score": 14}
    assert len(steps[0]["outputs_digest"]) == 64
    assert "sk-should-not-show" not in response.content.decode()


def test_an_operator_cancels_with_a_reason_and_the_run_says_who_and_why(shop):
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    url = reverse("api-execution-cancel", args=[execution.pk])
    operator = api(shop.users["workflow_operator"])
    missing = operator.post(url, {}, format="json")
    assert missing.status_code == 400
    assert "reason" in missing.json()
    blank = operator.post(url, {"reason": "   "}, format="json")
    assert blank.status_code == 400
    assert "reason" in blank.json()
    assert api(shop.users["viewer"]).post(url, {"reason": "x"}, format="json").status_code == 403
    done = operator.post(url, {"reason": "Wrong input <b>"}, format="json")
    assert done.status_code == 200, done.content
    body = done.json()
    assert body["status"] == "cancelled"
    assert body["step_runs"][0]["status"] == "cancelled"
    [intervention] = body["interventions"]
    assert intervention["action"] == "operator.cancelled"
    assert intervention["reason"] == "Wrong input <b>"
    assert intervention["actor"] == "workflow_operator@acme.test"
    again = operator.post(url, {"reason": "again"}, format="json")
    assert again.status_code == 400
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED


def test_a_platform_administrator_who_is_not_a_member_sees_no_run(shop):
    """GIVEN runs in a workspace WHEN the platform administrator (no membership there) asks THEN
    the list is empty and each run answers 404, as if it did not exist; starting one is refused."""
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    admin = api(shop.users["platform_admin"])
    listed = admin.get(reverse("api-execution-list"))
    assert listed.status_code == 200
    assert listed.json()["results"] == []
    assert admin.get(reverse("api-execution-detail", args=[execution.pk])).status_code == 404
    cancel = admin.post(reverse("api-execution-cancel", args=[execution.pk]), {"reason": "x"}, format="json")
    assert cancel.status_code in (403, 404)
    assert start(admin, workflow, {"input": {}}).status_code in (403, 404)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED


def test_another_organisations_runs_are_404(shop):
    from tests.workflows.execution_world import executions_of

    foreign = executions_of(shop)["foreign"]
    client = api(shop.users["workspace_owner"])
    assert client.get(reverse("api-execution-detail", args=[foreign.pk])).status_code == 404
    ids = {row["id"] for row in client.get(reverse("api-execution-list")).json()["results"]}
    assert foreign.pk not in ids
    assert executions_of(shop)["own"].pk in ids


# --- Service accounts ------------------------------------------------------------------------------


def bearer_for(shop, scopes: list[str]) -> APIClient:
    owner = shop.users["workspace_owner"]
    # A client of the API of its own (the shop's integrations hold the accounts their steps act as).
    client_app = Integration.objects.create(workspace=shop.ws, name="Runner", slug="runner", kind="api")
    account = service_accounts.service_account_create(
        actor=owner, integration=client_app, name="runner", scopes=scopes
    )
    token = service_accounts.service_account_token_issue(actor=owner, account=account).plaintext
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_service_account_with_the_trigger_scope_starts_its_workspaces_workflows_only(shop):
    workflow = active_workflow(shop)
    client = bearer_for(shop, ["executions:trigger"])
    started = start(client, workflow, {"input": {"amount": 3}})
    assert started.status_code == 201, started.content
    run = started.json()
    assert run["triggered_by"] is None
    assert run["trigger_source"].startswith("manual:service account runner (#")
    assert run["step_runs"][0]["inputs"] is None  # no executions:read: digests only
    assert len(run["step_runs"][0]["inputs_digest"]) == 64
    assert start(client, shop.workflows["sibling"], {"input": {}}).status_code == 404
    assert start(client, shop.workflows["foreign"], {"input": {}}).status_code == 404
    # It may start runs, not read or stop them.
    assert client.get(reverse("api-execution-list")).json()["results"] == []
    assert client.get(reverse("api-execution-detail", args=[run["id"]])).status_code == 404
    cancel = client.post(reverse("api-execution-cancel", args=[run["id"]]), {"reason": "x"}, format="json")
    assert cancel.status_code == 404
    assert Execution.objects.count() == 1


def test_a_service_account_without_the_trigger_scope_is_refused(shop):
    workflow = active_workflow(shop)
    assert start(bearer_for(shop, ["executions:read"]), workflow, {"input": {}}).status_code == 403
    assert start(bearer_for_other(shop), workflow, {"input": {}}).status_code == 403
    assert not Execution.objects.exists()


def bearer_for_other(shop) -> APIClient:
    owner = shop.users["workspace_owner"]
    client_app = Integration.objects.create(workspace=shop.ws, name="Reader", slug="reader", kind="api")
    account = service_accounts.service_account_create(
        actor=owner, integration=client_app, name="reader", scopes=["workflows:read"]
    )
    token = service_accounts.service_account_token_issue(actor=owner, account=account).plaintext
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_read_scope_lists_its_workspaces_runs(shop):
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    client = bearer_for(shop, ["executions:read"])
    rows = client.get(reverse("api-execution-list")).json()["results"]
    assert [row["id"] for row in rows] == [execution.pk]
    detail = client.get(reverse("api-execution-detail", args=[execution.pk])).json()
    assert detail["step_runs"][0]["inputs"]["input"] == {"amount": 7}
