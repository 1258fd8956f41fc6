"""The builder's structured editor: explicit *Add a step*, untouched rows never validated, an
error summary linking to each field, cron checked by the scheduler's parser with the next runs
shown, and a save over a change waiting for review asked first."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.workflows.conftest import TRIAGE, new_workflow
from tests.workflows.test_pages import SETTINGS, structured
from workflows.changes import services
from workflows.changes.models import ChangeState, Workflow
from workflows.changes.schedule import cron_next_runs, cron_problem


def _total_forms(body: str) -> int:
    return int(re.search(r'name="steps-TOTAL_FORMS" value="(\d+)"', body).group(1))


def test_a_new_workflow_starts_with_its_first_step_and_no_empty_row(shop, client):
    client.force_login(shop.users["workflow_builder"])
    body = client.get(reverse("workflow-create")).content.decode()
    assert _total_forms(body) == 1
    assert 'name="add_step"' in body
    assert "— choose a type —" in body


def test_add_a_step_redraws_with_one_more_row_and_saves_nothing(shop, client):
    client.force_login(shop.users["workflow_builder"])
    data = {**SETTINGS, "workspace": shop.ws.pk, **structured(summary="kept as typed"), "add_step": "1"}
    data["name"] = ""  # not filled in yet: no error until the builder saves
    data["steps-1-expression"] = ""
    response = client.post(reverse("workflow-create"), data)
    body = response.content.decode()
    assert response.status_code == 200
    assert _total_forms(body) == 3
    assert 'value="kept as typed"' in body
    assert 'id="error-summary"' not in body  # nothing validated
    assert "This field is required" not in body
    assert 'class="errors"' not in body
    assert not Workflow.objects.filter(slug="ticket-triage").exists()


def test_an_untouched_added_row_does_not_stop_the_save(shop, client):
    client.force_login(shop.users["workflow_builder"])
    data = {**SETTINGS, "workspace": shop.ws.pk, **structured()}
    data["steps-TOTAL_FORMS"] = "3"  # the row *Add a step* gave, left empty (type "— choose —")
    data["steps-2-type"] = ""
    response = client.post(reverse("workflow-create"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    workflow = Workflow.objects.get(slug="ticket-triage")
    assert [step["id"] for step in workflow.versions.get().definition["steps"]] == ["fetch", "tag"]


def test_errors_are_summarised_at_the_top_with_links_and_nothing_typed_is_lost(shop, client):
    client.force_login(shop.users["workflow_builder"])
    data = {**SETTINGS, "workspace": shop.ws.pk, **structured(trigger=("schedule", "61 25 * * *", ""))}
    data["steps-1-id"] = "Bad Id"
    response = client.post(reverse("workflow-create"), data)
    body = response.content.decode()
    assert response.status_code == 200
    summary = body[body.index('id="error-summary"') : body.index("</div>", body.index('id="error-summary"'))]
    assert 'href="#id_trigger_cron"' in summary
    assert "bad minute" in summary
    assert 'href="#id_steps-1-id"' in summary
    assert "Step 2: Step id" in summary
    assert summary.index("id_trigger_cron") < summary.index("id_steps-1-id")  # page order
    assert 'value="61 25 * * *"' in body
    assert 'value="Bad Id"' in body
    assert not Workflow.objects.filter(slug="ticket-triage").exists()


@pytest.mark.parametrize(
    ("cron", "message"),
    [("every tuesday", "five fields"), ("61 25 * * *", "bad minute"), ("", "needs a cron expression")],
)
def test_a_schedule_is_checked_by_the_schedulers_parser(shop, client, cron, message):
    client.force_login(shop.users["workflow_builder"])
    data = {**SETTINGS, "workspace": shop.ws.pk, **structured(trigger=("schedule", cron, ""))}
    body = client.post(reverse("workflow-create"), data).content.decode()
    field = body[body.index('<label for="id_trigger_cron"') : body.index('<label for="id_trigger_path"')]
    assert message in field.lower()
    assert "about trigger types" not in body


@pytest.mark.parametrize("path", ["tickets", "/tickets?x=1", "/a\u202eb", "/a\u200bb", "/" + "t" * 10_000])
def test_a_webhook_path_that_is_not_one_is_said_on_its_field(shop, client, path):
    client.force_login(shop.users["workflow_builder"])
    data = {**SETTINGS, "workspace": shop.ws.pk, **structured(trigger=("webhook", "", path))}
    body = client.post(reverse("workflow-create"), data).content.decode()
    field = body[body.index('<label for="id_trigger_path"') : body.index('<label for="id_input_schema"')]
    assert "A webhook path starts with /" in field
    assert 'href="#id_trigger_path"' in body
    assert "must be manual, schedule" not in body
    assert not Workflow.objects.filter(slug="ticket-triage").exists()


def test_the_trigger_fields_are_marked_with_their_type_and_all_shown_without_script(shop, client):
    client.force_login(shop.users["workflow_builder"])
    body = client.get(reverse("workflow-create")).content.decode()
    for types, name in (("schedule", "trigger_cron"), ("webhook", "trigger_path")):
        row = re.search(rf'<div class="typed" data-trigger-types="([^"]*)"( hidden)?>\s*<div class="field">\s*'
                        rf'<label for="id_{name}"', body)  # fmt: skip
        assert row, name
        assert row.group(1) == types
        assert row.group(2) is None  # the script hides the other types' fields; the server never does
    assert 'data-trigger-types="" ' not in body
    assert (
        re.search(r'data-trigger-types="[^"]*">\s*<div class="field">\s*<label for="id_summary"', body)
        is None
    )


def test_a_webhook_trigger_ignores_a_cron_typed_before_the_type_changed(shop, client):
    """GIVEN a builder typed a schedule, then chose a webhook WHEN the editor is saved THEN the
    schedule is neither checked nor kept: the trigger is the webhook alone."""
    client.force_login(shop.users["workflow_builder"])
    data = {
        **SETTINGS,
        "workspace": shop.ws.pk,
        **structured(trigger=("webhook", "every tuesday", "/tickets")),
    }
    response = client.post(reverse("workflow-create"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    version = Workflow.objects.get(slug="ticket-triage").versions.get()
    assert version.definition["trigger"] == {"type": "webhook", "path": "/tickets"}


def test_a_schedule_trigger_ignores_a_webhook_path_and_a_manual_one_both(shop, client):
    client.force_login(shop.users["workflow_builder"])
    data = {**SETTINGS, "workspace": shop.ws.pk, **structured(trigger=("schedule", "0 6 * * 1-5", "no path"))}
    assert client.post(reverse("workflow-create"), data).status_code == 302
    assert Workflow.objects.get(slug="ticket-triage").versions.get().definition["trigger"] == {
        "type": "schedule",
        "cron": "0 6 * * 1-5",
    }
    data = {**SETTINGS, "workspace": shop.ws.pk, **structured(trigger=("manual", "61 25 * * *", "no path"))}
    data["slug"] = "manual-one"
    assert client.post(reverse("workflow-create"), data).status_code == 302
    assert Workflow.objects.get(slug="manual-one").versions.get().definition["trigger"] == {"type": "manual"}


def test_an_error_keeps_what_was_typed_in_every_trigger_field(shop, client):
    client.force_login(shop.users["workflow_builder"])
    data = {**SETTINGS, "workspace": shop.ws.pk, **structured(trigger=("webhook", "0 6 * * 1-5", "tickets"))}
    body = client.post(reverse("workflow-create"), data).content.decode()
    assert 'href="#id_trigger_path"' in body
    assert 'href="#id_trigger_cron"' not in body  # the schedule is not the chosen type: not judged
    assert 'value="0 6 * * 1-5"' in body
    assert 'value="tickets"' in body
    assert not Workflow.objects.filter(slug="ticket-triage").exists()


def test_the_next_five_runs_are_shown_in_the_workspaces_time_zone(shop, client):
    client.force_login(shop.users["workflow_builder"])
    data = {
        **SETTINGS,
        "workspace": shop.ws.pk,
        **structured(trigger=("schedule", "0 6 * * 1-5", "")),
        "redraw": "1",
    }
    body = client.post(reverse("workflow-create"), data).content.decode()
    times = re.findall(r'<time datetime="([^"]+)"', body)
    assert len(times) == 5
    assert f"Next runs ({shop.ws.time_zone})" in body
    for moment in map(datetime.fromisoformat, times):
        assert moment.weekday() < 5
        assert (moment.hour, moment.minute) == (6, 0)
    # What the builder reads is the time in that zone too, not the same moment in UTC.
    shown = re.findall(r"<time [^>]*>([^<]+)</time>", body)
    assert len(shown) == 5
    assert all(" 06:00 " in text for text in shown), shown


def test_next_runs_follow_daylight_saving_as_cron_does():
    """Europe/Berlin goes from 02:00 to 03:00 on 2026-03-29: the 02:30 run of that day runs at
    the first moment after the gap, once."""
    runs = cron_next_runs("30 2 * * *", "Europe/Berlin", count=3, after=datetime(2026, 3, 27, 12, tzinfo=UTC))
    assert [run.isoformat() for run in runs] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    assert cron_next_runs("30 2 * * *", "Not/AZone") == []
    assert cron_next_runs("61 * * * *", "UTC") == []


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=60),
        st.lists(
            st.sampled_from(["*", "*/5", "1-5", "0", "59", "MON", "L", "?", ",", "-1", "99"]),
            min_size=0,
            max_size=7,
        ).map(" ".join),
    )
)
def test_any_text_as_a_schedule_is_a_sentence_or_five_runs(text):
    problem = cron_problem(text)
    if problem is None:
        runs = cron_next_runs(text, "Europe/Berlin", after=datetime(2026, 1, 1, tzinfo=UTC))
        assert len(runs) == 5  # a schedule cronsim accepts always runs again
        assert runs == sorted(runs)
    else:
        assert isinstance(problem, str)
        assert problem.endswith(".")


def test_saving_over_a_change_waiting_for_review_asks_first(shop, client):
    world = shop
    change = new_workflow(world)
    services.change_request_submit(actor=world.users["workflow_builder"], change=change)
    workflow = change.workflow
    client.force_login(world.users["workflow_builder"])
    edit = reverse("workflow-edit", args=[workflow.pk])
    page = client.get(edit).content.decode()
    assert "will supersede" in page
    data = structured(summary="a second thought", base=change.version.pk)
    asked = client.post(edit, data)
    body = asked.content.decode()
    assert asked.status_code == 200
    assert "Save over the change waiting for review?" in body
    assert "leaves the reviewers&#x27; queue" in body or "leaves the reviewers' queue" in body
    assert 'value="a second thought"' in body  # what was typed stays
    assert workflow.versions.count() == 1
    change.refresh_from_db()
    assert change.state == ChangeState.SUBMITTED
    saved = client.post(edit, {**data, "confirm_supersede": "yes"})
    assert saved.status_code == 302
    change.refresh_from_db()
    assert change.state == ChangeState.SUPERSEDED
    assert workflow.versions.count() == 2


def test_diffs_and_the_active_version_read_as_json_field_by_field(shop, client):
    world = shop
    change = new_workflow(world)
    client.force_login(world.users["workflow_builder"])
    body = client.get(reverse("change-detail", args=[change.pk])).content.decode()
    assert "&#x27;next&#x27;: None" not in body
    assert "None}" not in body
    assert "&quot;GET&quot;" in body  # a field's value as JSON
    assert 'class="field-added"' in body  # a new workflow: every field is new
    assert 'class="field-changed"' not in body
    assert re.search(
        r"<td>next <span class=\"added-mark\">added</span></td>\s*<td>—</td>\s*<td><pre>null</pre>", body
    )


def test_an_added_step_reads_as_added_and_a_changed_one_names_only_what_changed(shop, client):
    """GIVEN an active version WHEN a new version adds a step and edits one field of another
    THEN the change page marks every field of the added step added (none changed), and of the
    edited step only that field changed, the others neither."""
    world = shop
    first = new_workflow(world)
    workflow = first.workflow
    workflow.active_version = first.version  # as if approved and applied: the diff is against it
    workflow.save(update_fields=["active_version"])
    edited = {**TRIAGE, "steps": [dict(step) for step in TRIAGE["steps"]]}
    edited["steps"][3]["next"] = "notify"
    edited["steps"][0]["path"] = "/tickets/open"
    edited["steps"].append(
        {"id": "notify", "type": "transform", "expression": "{'done': true}", "next": None}
    )
    change = services.workflow_version_create(
        actor=world.users["workflow_builder"], workflow=workflow, definition=edited,
        base_version=first.version, summary="notify at the end",
    )  # fmt: skip
    client.force_login(world.users["workflow_builder"])
    body = client.get(reverse("change-detail", args=[change.pk])).content.decode()

    def rows_of(step_id: str) -> list[tuple[str, str]]:
        start = re.search(rf'<th scope="rowgroup" rowspan="\d+">{step_id} ', body).start()
        group = body[body.rindex("<tbody", 0, start) : body.index("</tbody>", start)]
        return re.findall(r'<tr class="field-(\w+)">.*?<td>(\w+)', group, re.S)

    assert sorted(rows_of("notify")) == [
        ("added", "expression"),
        ("added", "id"),
        ("added", "next"),
        ("added", "type"),
    ]
    assert '<span class="added-mark">added</span>' in body
    fetch = {field: mark for mark, field in rows_of("fetch")}
    assert fetch.pop("path") == "changed"
    assert set(fetch.values()) == {"same"}


def test_the_structured_editor_keeps_every_field_of_ai_and_approval_steps_and_the_input_schema():
    """Loading a definition into the step editor and saving it back loses nothing: the AI step's
    instructions, data, validators, routes, impact, bias flag and review settings, an approval's
    deadline, and the input schema."""
    from workflows.changes.forms import (
        ChangeForm,
        StepFormSet,
        definition_from,
        step_initial,
        trigger_initial,
    )

    definition = {
        "trigger": {"type": "manual"},
        "input_schema": {"type": "object", "required": ["ticket"]},
        "steps": [
            {"id": "decide", "type": "ai_prompt", "provider": "llm", "model": "small-eu", "system": "Decide.",
             "prompt": "Ticket:", "data": "input.ticket", "output_schema": {"type": "object"},
             "validators": [{"expression": "output.amount <= 100", "message": "Too much."}],
             "routes": {"field": "action", "next": {"refund": "ask", "escalate": None}},
             "guardrails": {"redact_pii": True, "max_tokens": 200}, "impact": "high",
             "decides_about_people": True, "reviewer_role": "workspace_owner", "review_hours": 24, "next": None},
            {"id": "ask", "type": "human_approval", "approver_role": "compliance_officer", "timeout_hours": 12,
             "on_timeout": "approve", "next": None},
        ],
    }  # fmt: skip
    data = {f"steps-{k}": v for k, v in (("TOTAL_FORMS", "2"), ("INITIAL_FORMS", "2"))}
    for index, row in enumerate(step_initial(definition)):
        for name, value in row.items():
            if value is True:
                value = "on"
            data[f"steps-{index}-{name}"] = "" if value is None else str(value)
        data[f"steps-{index}-ORDER"] = str(index + 1)
    initial = trigger_initial(definition)
    change = ChangeForm({"summary": "Same", **initial})
    steps = StepFormSet(data, prefix="steps")
    assert change.is_valid(), change.errors
    assert steps.is_valid(), steps.errors
    saved, _ = definition_from(change, steps)
    assert saved == definition
