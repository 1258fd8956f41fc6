"""The run pages: a workflow's runs (filters, newest-first keyset pages, bounded queries), a run's
timeline, *Run this workflow* and *Stop this run* for those who may — and nothing for anyone else."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from governance.crypto.keyring import forget_keys
from tests.workflows.execution_world import executions_of
from tests.workflows.test_executions import SCORING, active_workflow, drain, trigger
from workflows.executions.models import Execution, ExecutionStatus

HOSTILE = "<script>alert(1)</script> \u202eevil\u202c \U0001f600 \u0000"


def signed_in(client, world, role):
    client.force_login(world.users[role])
    return client


def test_the_workflow_page_links_to_its_runs(shop, client):
    workflow = active_workflow(shop)
    page = signed_in(client, shop, "viewer").get(reverse("workflow-detail", args=[workflow.pk]))
    assert reverse("workflow-runs", args=[workflow.pk]) in page.content.decode()


def test_an_operator_runs_the_workflow_from_the_page_once_even_when_posting_twice(shop, client):
    """GIVEN the runs page WHEN an operator submits an input THEN a run starts and its page opens;
    the same form posted again (a double click) THEN the same run, not a second one."""
    workflow = active_workflow(shop)
    signed_in(client, shop, "workflow_operator")
    page = client.get(reverse("workflow-runs", args=[workflow.pk])).content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page).group(1)
    assert 'for="id_input"' in page
    form = {"input": '{"amount": 7}', "idempotency_key": key}
    first = client.post(reverse("workflow-runs", args=[workflow.pk]), form)
    second = client.post(reverse("workflow-runs", args=[workflow.pk]), form)
    execution = Execution.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == reverse("run-detail", args=[execution.pk])
    assert execution.triggered_by == shop.users["workflow_operator"]
    assert AuditEvent.objects.filter(action="execution.triggered").count() == 1


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("{nope", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"a": "x\\u0000y"}', "NUL"),
    ],
)
def test_bad_input_keeps_the_typed_text_and_shows_a_field_error(shop, client, typed, message):
    workflow = active_workflow(shop)
    signed_in(client, shop, "workflow_operator")
    response = client.post(
        reverse("workflow-runs", args=[workflow.pk]), {"input": typed, "idempotency_key": "k1"}
    )
    assert response.status_code == 200
    form = response.context["trigger_form"]
    assert message.lower() in " ".join(form.errors["input"]).lower()
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", response.content.decode(), re.S).group(1)
    assert textarea.strip() == typed.replace("<", "&lt;").replace('"', "&quot;")
    assert 'name="idempotency_key" value="k1"' in response.content.decode()
    assert not Execution.objects.exists()


def test_a_draft_workflow_is_refused_above_the_form(shop, client):
    signed_in(client, shop, "workflow_operator")
    draft = shop.workflows["own"]
    response = client.post(reverse("workflow-runs", args=[draft.pk]), {"input": "{}", "idempotency_key": "k"})
    assert response.status_code == 200
    assert "only active workflows run" in response.content.decode()
    assert not Execution.objects.exists()


def test_the_runs_list_filters_and_pages_newest_first(shop, client):
    workflow = active_workflow(shop)
    runs = [trigger(shop, workflow, {"amount": n}) for n in range(30)]
    drain(runs[0])
    signed_in(client, shop, "viewer")
    url = reverse("workflow-runs", args=[workflow.pk])
    first = client.get(url)
    shown = [run.pk for run in first.context["runs"]]
    assert shown == [run.pk for run in reversed(runs)][:25]
    older = client.get(url, {"before": first.context["older"]})
    assert [run.pk for run in older.context["runs"]] == [run.pk for run in reversed(runs[:5])]
    assert older.context["older"] is None
    done = client.get(url, {"status": "succeeded"})
    assert [run.pk for run in done.context["runs"]] == [runs[0].pk]
    assert list(client.get(url, {"trigger_kind": "webhook"}).context["runs"]) == []
    bad = client.get(url, {"status": "exploded"})
    assert bad.status_code == 200
    assert "status" in bad.context["filters"].errors


@pytest.fixture
def cached_keys(settings):
    """Data keys cached as in production (the test settings read them afresh on every use)."""
    settings.CRYPTO_KEY_CACHE_SECONDS = 60
    yield
    forget_keys()


def test_the_runs_list_and_a_run_page_cost_a_bounded_number_of_queries(
    shop, client, cached_keys, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    """GIVEN 25 runs WHEN the list and a run's page load THEN the queries do not grow with the runs
    or the steps (the data key is read once: committed keys are cached, as in production)."""
    workflow = active_workflow(shop, SCORING)
    with django_capture_on_commit_callbacks(execute=True):  # the run completes (eager workers)
        first = trigger(shop, workflow, {"amount": 7})
    runs = [first, *(trigger(shop, workflow, {"amount": n}) for n in range(24))]
    signed_in(client, shop, "viewer")
    client.get(reverse("workflow-runs", args=[workflow.pk]))  # the session and the key cache warmed
    with django_assert_max_num_queries(9):
        page = client.get(reverse("workflow-runs", args=[workflow.pk]))
    assert len(page.context["runs"]) == 25
    with django_assert_max_num_queries(10):
        page = client.get(reverse("run-detail", args=[first.pk]))
    assert len(page.context["timeline"]) == 3
    with django_assert_max_num_queries(10):
        page = client.get(reverse("run-detail", args=[runs[-1].pk]))
    assert len(page.context["timeline"]) == 1


def test_the_timeline_shows_steps_branch_durations_and_redacted_io(shop, client):
    workflow = active_workflow(shop, SCORING)
    execution = trigger(shop, workflow, {"amount": 7, "password": "hunter2-very-secret"})
    drain(execution)
    page = signed_in(client, shop, "workflow_builder").get(reverse("run-detail", args=[execution.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert [row["run"].step_id for row in page.context["timeline"]] == ["score", "route", "big"]
    assert "Took the “then” edge to big" in html
    assert " ms</td>" in html
    assert "&quot;size&quot;: &quot;big&quot;" in html  # pretty JSON, escaped
    assert "hunter2-very-secret" not in html
    assert "workflow_operator@acme.test" in html
    assert "Stop this run" not in html  # a builder reads only; and the run is over anyway


def test_an_operator_stops_a_run_with_a_reason_and_the_page_says_who_and_why(shop, client):
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    signed_in(client, shop, "workflow_operator")
    page = client.get(reverse("run-detail", args=[execution.pk])).content.decode()
    assert 'for="id_reason"' in page
    empty = client.post(reverse("run-cancel", args=[execution.pk]), {"reason": ""})
    assert empty.status_code == 200
    assert "reason" in empty.context["cancel_form"].errors
    done = client.post(reverse("run-cancel", args=[execution.pk]), {"reason": HOSTILE.replace("\u0000", "")})
    assert done.status_code == 302
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED
    html = client.get(reverse("run-detail", args=[execution.pk])).content.decode()
    assert "Stopped by workflow_operator@acme.test" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert "Stop the run" not in html  # a finished run has nothing to stop
    again = client.post(reverse("run-cancel", args=[execution.pk]), {"reason": "again"})
    assert again.status_code == 200
    assert "is cancelled" in " ".join(again.context["cancel_form"].non_field_errors())
    assert "Not stopped:" in again.content.decode()


def test_hostile_input_is_shown_escaped(shop, client):
    workflow = active_workflow(shop, {
        "trigger": {"type": "manual"},
        "steps": [{"id": "echo", "type": "transform", "expression": "input", "next": None}],
    })  # fmt: skip
    execution = trigger(shop, workflow, {"note": HOSTILE.replace("\u0000", "")})
    drain(execution)
    html = signed_in(client, shop, "viewer").get(reverse("run-detail", args=[execution.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "\u202eevil" in html
    assert "\U0001f600" in html


def test_viewers_read_and_see_no_forms_and_their_posts_are_refused(shop, client):
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    signed_in(client, shop, "viewer")
    runs = client.get(reverse("workflow-runs", args=[workflow.pk])).content.decode()
    run = client.get(reverse("run-detail", args=[execution.pk])).content.decode()
    assert "Start the run" not in runs
    assert "Stop the run" not in run
    assert f"Run {execution.pk}" in runs
    posted = client.post(
        reverse("workflow-runs", args=[workflow.pk]), {"input": "{}", "idempotency_key": "k"}
    )
    assert posted.status_code == 403
    assert client.post(reverse("run-cancel", args=[execution.pk]), {"reason": "x"}).status_code == 403
    assert Execution.objects.count() == 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED


@pytest.mark.parametrize("role", ["platform_admin", "auditor"])
def test_without_execution_view_there_is_no_run_data_at_all(shop, client, role):
    """GIVEN a run WHEN the platform administrator (not a member) or an auditor opens the pages
    THEN every run page answers 404, as if there were none."""
    workflow = active_workflow(shop)
    execution = trigger(shop, workflow)
    signed_in(client, shop, role)
    assert client.get(reverse("workflow-runs", args=[workflow.pk])).status_code == 404
    assert client.get(reverse("run-detail", args=[execution.pk])).status_code == 404
    assert client.post(reverse("run-cancel", args=[execution.pk]), {"reason": "x"}).status_code == 404
    posted = client.post(
        reverse("workflow-runs", args=[workflow.pk]), {"input": "{}", "idempotency_key": "k"}
    )
    assert posted.status_code == 404
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED


def test_another_organisations_and_another_workspaces_runs_are_404(shop, client):
    runs = executions_of(shop)
    signed_in(client, shop, "workspace_owner")
    assert client.get(reverse("run-detail", args=[runs["own"].pk])).status_code == 200
    for scope in ("sibling", "foreign"):
        assert client.get(reverse("run-detail", args=[runs[scope].pk])).status_code == 404
        assert client.get(reverse("workflow-runs", args=[shop.workflows[scope].pk])).status_code == 404
        assert client.post(reverse("run-cancel", args=[runs[scope].pk]), {"reason": "x"}).status_code == 404
