"""The builders' pages, without JavaScript: create, edit, see the diff, submit, withdraw."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from tests.workflows.conftest import TRIAGE, new_workflow
from workflows.changes.models import ChangeRequest, ChangeState, Workflow


def _row_of(body: str, field: str) -> str:
    """Whether the editor shows step 0's ``field`` ("shown") or keeps it hidden ("hidden")."""
    match = re.search(
        r'<div class="typed"[^>]*?( hidden)?>\s*<div class="field[^"]*">\s*<label for="id_steps-0-'
        + field
        + '"',
        body,
    )
    assert match, field
    return "hidden" if match.group(1) else "shown"


def structured(summary="First version", steps=None, trigger=("manual", "", ""), base=""):
    steps = (
        steps
        if steps is not None
        else [
            {
                "id": "fetch",
                "type": "http_request",
                "integration": "crm",
                "method": "GET",
                "path": "/t",
                "next": "tag",
            },
            {"id": "tag", "type": "transform", "expression": "x + 1"},
        ]
    )
    data = {"summary": summary, "base_version": base, "trigger_type": trigger[0], "trigger_cron": trigger[1],
            "trigger_path": trigger[2], "steps-TOTAL_FORMS": str(len(steps)), "steps-INITIAL_FORMS": "0",
            "steps-MIN_NUM_FORMS": "0", "steps-MAX_NUM_FORMS": "100"}  # fmt: skip
    for index, step in enumerate(steps):
        for key, value in step.items():
            data[f"steps-{index}-{'else_' if key == 'else' else key}"] = value
        data.setdefault(f"steps-{index}-ORDER", str(index + 1))
    return data


SETTINGS = {"workspace": None, "name": "Ticket triage", "slug": "ticket-triage", "environment": "staging",
            "data_region": "EU"}  # fmt: skip


def test_builder_creates_a_workflow_in_the_structured_editor(shop, client):
    world = shop
    client.force_login(world.users["workflow_builder"])
    page = client.get(reverse("workflow-create"))
    assert page.status_code == 200
    assert '<label for="id_steps-0-type">Type</label>' in page.content.decode()
    response = client.post(reverse("workflow-create"), {**SETTINGS, "workspace": world.ws.pk, **structured()})
    assert response.status_code == 302, response.content.decode()[:3000]
    workflow = Workflow.objects.get(slug="ticket-triage")
    version = workflow.versions.get()
    assert version.definition == {"trigger": {"type": "manual"}, "steps": [
        {"id": "fetch", "type": "http_request", "integration": "crm", "method": "GET", "path": "/t", "next": "tag"},
        {"id": "tag", "type": "transform", "expression": "x + 1", "next": None}]}  # fmt: skip
    change = ChangeRequest.objects.get(workflow=workflow)
    page = client.get(response["Location"]).content.decode()
    assert "Submit for review" in page
    client.post(reverse("change-submit", args=[change.pk]))
    change.refresh_from_db()
    assert change.state == ChangeState.SUBMITTED
    page = client.get(reverse("change-detail", args=[change.pk])).content.decode()
    assert "security" in page  # the CRM integration added: security reviews it


def test_errors_show_at_the_step_and_field_and_nothing_is_saved(shop, client):
    world = shop
    client.force_login(world.users["workflow_builder"])
    steps = [
        {"id": "fetch", "type": "http_request", "integration": "globex-erp", "method": "GET", "path": "/t",
         "next": "nowhere"},
        {"id": "Bad Id", "type": "transform", "expression": "x"},
        {"id": "ask", "type": "ai_prompt", "provider": "llm", "model": "m", "prompt": "p", "output_schema": "{oops",
         "guardrails": "{}"},
    ]  # fmt: skip
    before = (Workflow.objects.count(), AuditEvent.objects.count())
    response = client.post(
        reverse("workflow-create"), {**SETTINGS, "workspace": world.ws.pk, **structured(steps=steps)}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Lower-case letters, digits" in body
    assert "Not valid JSON" in body
    assert (Workflow.objects.count(), AuditEvent.objects.count()) == before
    steps[1]["id"] = "tag"
    steps[2]["output_schema"] = "{}"
    response = client.post(
        reverse("workflow-create"), {**SETTINGS, "workspace": world.ws.pk, **structured(steps=steps)}
    )
    body = response.content.decode()
    assert "&#x27;globex-erp&#x27; is not an integration of this workspace" in body
    assert "No step has the id &#x27;nowhere&#x27;" in body
    assert (Workflow.objects.count(), AuditEvent.objects.count()) == before


def test_json_view_for_experts(shop, client):
    world = shop
    client.force_login(world.users["workflow_builder"])
    url = reverse("workflow-create") + "?mode=json"
    bad = client.post(url, {**SETTINGS, "workspace": world.ws.pk, "summary": "v1", "definition": "{nope"})
    assert "Not valid JSON" in bad.content.decode()
    ok = client.post(
        url, {**SETTINGS, "workspace": world.ws.pk, "summary": "v1", "definition": json.dumps(TRIAGE)}
    )
    assert ok.status_code == 302, ok.content.decode()[:2000]
    assert Workflow.objects.get(slug="ticket-triage").versions.get().definition == TRIAGE


def test_editing_an_outdated_version_is_a_conflict(shop, client):
    world = shop
    change = new_workflow(world)
    workflow = change.workflow
    client.force_login(world.users["workflow_builder"])
    edit = reverse("workflow-edit", args=[workflow.pk]) + "?mode=json"
    first = client.post(
        edit,
        {"summary": "mine", "base_version": change.version.pk, "definition": json.dumps(TRIAGE),
         "confirm_supersede": "yes"},
    )  # fmt: skip
    assert first.status_code == 302
    client.force_login(world.users["workspace_owner"])
    stale = client.post(edit, {"summary": "theirs", "base_version": change.version.pk,
                               "definition": json.dumps(TRIAGE)})  # fmt: skip
    assert "Conflict: the workflow changed since you opened it" in stale.content.decode()
    assert workflow.versions.count() == 2


def test_operators_and_viewers_cannot_edit(shop, client):
    world = shop
    change = new_workflow(world)
    for role in ("workflow_operator", "viewer"):
        client.force_login(world.users[role])
        assert client.get(reverse("workflow-detail", args=[change.workflow.pk])).status_code == 200
        assert client.get(reverse("workflow-edit", args=[change.workflow.pk])).status_code == 403
        assert client.get(reverse("workflow-create")).status_code == 403


def test_withdraw_and_the_published_schema(shop, client):
    world = shop
    change = new_workflow(world)
    client.force_login(world.users["workflow_builder"])
    client.post(reverse("change-withdraw", args=[change.pk]))
    change.refresh_from_db()
    assert change.state == ChangeState.WITHDRAWN
    schema = client.get(reverse("workflow-schema"))
    assert schema["Content-Type"] == "application/schema+json"
    assert json.loads(schema.content)["title"] == "Workflow definition"


@pytest.mark.django_db(databases=["default", "secrets"])  # the demo stores credentials
def test_demo_journey_officer_approves_the_waiting_change(client):
    """After seed_demo, the officer's inbox holds the demo changes; approving the CRM sync's
    schedule change makes version 2 active."""
    from unittest import mock

    from django.core.management import call_command

    from accounts.models import User
    from tests.workflows.conftest import BUSINESS_HOURS
    from workflows.changes.selectors import inbox_for

    with mock.patch("governance.access.policies.timezone.now", return_value=BUSINESS_HOURS):
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
        officer = User.objects.get(email="officer@demo.example")
        inbox = list(inbox_for(officer))
        assert {c.workflow.slug for c in inbox} == {"crm-sync", "ticket-triage", "payroll-export"}
        payroll = next(c for c in inbox if c.workflow.slug == "payroll-export")
        assert [t["code"] for t in payroll.required_tiers] == ["compliance", "privacy", "security", "manager"]
        crm = next(c for c in inbox if c.workflow.slug == "crm-sync")
        assert [t["code"] for t in crm.required_tiers] == ["compliance"]
        # The triage's AI step names the demo's registered model: nothing in the register refuses it.
        from workflows.ai.selectors import definition_ai_refusal

        triage = next(c for c in inbox if c.workflow.slug == "ticket-triage")
        assert definition_ai_refusal(triage.workflow.workspace, triage.version.definition) == ""
        client.force_login(officer)
        response = client.post(
            reverse("admin:workflows_changerequest_decide", args=[crm.pk]),
            {"tier": "compliance", "decision": "approve", "comment": "fine"},
            follow=True,
        )
        assert "now applied" in response.content.decode()
    workflow = Workflow.objects.get(slug="crm-sync")
    assert workflow.active_version.number == 2
    assert workflow.active_version.definition["trigger"]["cron"] == "0 6 * * 1-5"


def test_builders_list_query_count_is_flat(shop, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    world = shop
    client.force_login(world.users["workflow_builder"])
    counts = []
    for batch in (2, 10):
        for index in range(batch):
            new_workflow(world, slug=f"list-{batch}-{index}")
        client.get(reverse("workflow-list"))
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("workflow-list")).status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1], counts


def test_editor_shows_the_fields_of_each_steps_type(shop, client):
    """Without JavaScript: a step shows only its type's fields; choosing another type asks for
    that type's fields on the next page, with the error at the step."""
    world = shop
    client.force_login(world.users["workflow_builder"])
    steps = [{"id": "tag", "type": "branch", "expression": "x"}]  # was a transform, now a branch
    response = client.post(
        reverse("workflow-create"), {**SETTINGS, "workspace": world.ws.pk, **structured(steps=steps)}
    )
    body = response.content.decode()
    assert "&#x27;condition&#x27; is a required property" in body
    assert _row_of(body, "condition") == "shown"
    assert _row_of(body, "expression") == "hidden"  # kept with what was typed, not shown
    assert 'name="steps-0-expression"' in body
    assert "x</textarea>" in body
