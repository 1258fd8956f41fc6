"""The officer's inbox and review page in the control panel."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.workflows.conftest import new_workflow
from workflows.changes import services
from workflows.changes.models import ChangeState


def _submitted(world, **kwargs):
    return services.change_request_submit(
        actor=world.users["workflow_builder"], change=new_workflow(world, **kwargs)
    )


def test_inbox_lists_what_waits_for_me_oldest_first(shop, client):
    world = shop
    first = _submitted(world, slug="one")
    second = _submitted(world, slug="two")
    client.force_login(world.users["compliance_officer"])
    response = client.get(reverse("admin:workflows_changerequest_changelist"), {"inbox": "mine"})
    rows = list(response.context["cl"].result_list)
    mine = [r.pk for r in rows if r.pk in (first.pk, second.pk)]
    assert mine == [first.pk, second.pk]  # oldest first (ties broken by id)
    assert "0d 0h" in response.content.decode()
    client.force_login(world.users["workflow_builder"])  # authors have no inbox (and no control panel)
    assert client.get(reverse("admin:workflows_changerequest_changelist")).status_code == 302


def test_review_page_shows_diff_tiers_and_records_the_decision(shop, client):
    world = shop
    change = _submitted(world, environment="production")
    client.force_login(world.users["compliance_officer"])
    page = client.get(reverse("admin:workflows_changerequest_change", args=[change.pk])).content.decode()
    assert "A new workflow." in page
    assert "security-review checklist" in page
    assert "Review (compliance, security)" in page
    url = reverse("admin:workflows_changerequest_decide", args=[change.pk])
    form = client.get(url).content.decode()
    assert "Data handling" in form
    incomplete = client.post(
        url, {"tier": "compliance", "decision": "approve", "comment": "ok", "check_data_handling": "on"}
    )
    assert "Complete the security-review checklist" in incomplete.content.decode()
    no_comment = client.post(url, {"tier": "compliance", "decision": "approve"})
    assert "This field is required" in no_comment.content.decode()
    done = client.post(
        url,
        {
            "tier": "compliance",
            "decision": "approve",
            "comment": "ok",
            "check_data_handling": "on",
            "check_access_scope": "on",
            "check_error_behaviour": "on",
        },
        follow=True,
    )
    assert "The change is now in review" in done.content.decode()
    change.refresh_from_db()
    assert change.state == ChangeState.IN_REVIEW
    assert client.get(url).status_code == 403  # one tier per person: nothing left for this officer


def test_inbox_query_count_is_flat(shop, client):
    world = shop
    client.force_login(world.users["compliance_officer"])
    counts = []
    for batch in (3, 12):
        for index in range(batch):
            _submitted(world, slug=f"wf-{batch}-{index}")
        client.get(reverse("admin:workflows_changerequest_changelist"), {"inbox": "mine"})
        with CaptureQueriesContext(connection) as captured:
            client.get(reverse("admin:workflows_changerequest_changelist"), {"inbox": "mine"})
        counts.append(len(captured))
    assert counts[0] == counts[1], counts


def test_officer_quarantines_and_a_second_officer_reactivates_a_workflow(shop, client):
    from audit.models import AuditEvent
    from workflows.changes.models import Workflow

    world = shop
    change = _submitted(world)
    services.change_request_decide(
        actor=world.users["compliance_officer"], change=change, tier="compliance", approve=True, comment="ok"
    )
    services.change_request_decide(
        actor=world.second_officer, change=change, tier="security", approve=True, comment="ok"
    )
    workflow = Workflow.objects.get(pk=change.workflow_id)
    client.force_login(world.users["compliance_officer"])
    url = reverse("admin:workflows_workflow_status", args=[workflow.pk])
    assert "Reason" in client.get(url).content.decode()
    assert "This field is required" in client.post(url, {"status": "quarantined"}).content.decode()
    client.post(url, {"status": "quarantined", "reason": "INC-9: suspicious export"})
    workflow.refresh_from_db()
    assert workflow.status == "quarantined"
    event = AuditEvent.objects.filter(action="workflow.deactivated").latest("id")
    assert event.data["reason"] == "INC-9: suspicious export"
    again = client.post(url, {"status": "quarantined", "reason": "twice"})
    assert "already quarantined" in again.content.decode()
    assert workflow.quarantined_by == world.users["compliance_officer"]
    alone = client.post(url, {"status": "active", "reason": "INC-9 closed"})
    assert "a second person must lift the quarantine" in alone.content.decode()
    workflow.refresh_from_db()
    assert workflow.status == "quarantined"
    client.force_login(world.second_officer)
    client.post(url, {"status": "active", "reason": "INC-9 closed"})
    workflow.refresh_from_db()
    assert (workflow.status, workflow.quarantined_by) == ("active", None)
    client.force_login(world.users["auditor"])
    assert client.get(url).status_code == 403


def test_approving_a_change_does_not_lift_a_quarantine(shop):
    from workflows.changes.models import Workflow

    world = shop
    change = _submitted(world)
    officer, second = world.users["compliance_officer"], world.second_officer
    services.change_request_decide(
        actor=officer, change=change, tier="compliance", approve=True, comment="ok"
    )
    services.change_request_decide(actor=second, change=change, tier="security", approve=True, comment="ok")
    workflow = Workflow.objects.get(pk=change.workflow_id)
    services.workflow_set_status(actor=officer, workflow=workflow, status="quarantined", reason="INC-1")
    edit = services.workflow_version_create(
        actor=world.users["workflow_builder"],
        workflow=workflow,
        definition=change.version.definition,
        base_version=change.version,
        summary="fix",
    )
    edit = services.change_request_submit(actor=world.users["workflow_builder"], change=edit)
    done = services.change_request_decide(
        actor=officer, change=edit, tier="compliance", approve=True, comment="ok"
    )
    assert done.state == ChangeState.APPLIED
    workflow.refresh_from_db()
    assert workflow.status == "quarantined"
    assert workflow.active_version == edit.version


def test_the_incident_switch_works_outside_business_hours_and_on_personal_data(shop):
    """Quarantine is never blocked by the rules that guard activation."""
    from datetime import datetime
    from unittest import mock

    from workflows.changes.models import Workflow

    world = shop
    change = _submitted(world, environment="production", handles_pii=True)
    workflow = Workflow.objects.get(pk=change.workflow_id)
    Workflow.objects.filter(pk=workflow.pk).update(status="active")
    night = datetime.fromisoformat("2026-06-16T23:00:00+00:00")
    with mock.patch("governance.access.policies.timezone.now", return_value=night):
        services.workflow_set_status(
            actor=world.users["compliance_officer"],
            workflow=workflow,
            status="quarantined",
            reason="INC-2 at night",
        )
    workflow.refresh_from_db()
    assert workflow.status == "quarantined"


def test_workflow_changelist_counts_once_and_stays_within_ten_queries(shop, client):
    """GIVEN a compliance officer WHEN they open the workflows changelist THEN the visible rows are
    counted once (no second count of the same rows for "n total") and the page takes at most ten
    queries, whatever the number of workflows."""
    client.force_login(shop.users["compliance_officer"])
    url = reverse("admin:workflows_workflow_changelist")
    client.get(url)  # the session's first request records the session; later ones do not
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT COUNT(*)")]
    assert len(counts) == 1, counts
    assert len(queries) <= 10, [q["sql"] for q in queries.captured_queries]


def test_the_officers_home_counts_what_waits_and_the_inbox_opens_on_it(shop, client):
    from datetime import timedelta

    from django.utils import timezone

    from tests.workflows.conftest import new_workflow
    from workflows.changes import services as change_services
    from workflows.changes.models import ChangeRequest
    from workflows.changes.selectors import inbox_for

    world = shop
    change = new_workflow(world)
    change_services.change_request_submit(actor=world.users["workflow_builder"], change=change)
    ChangeRequest.objects.filter(pk=change.pk).update(
        submitted_at=timezone.now() - timedelta(days=3, hours=2)
    )
    new_workflow(world, slug="still-a-draft")  # a draft waits for nobody's review
    officer = world.users["compliance_officer"]
    client.force_login(officer)
    home = client.get("/admin/").content.decode()
    assert "Changes waiting for my review" in home
    waiting = list(inbox_for(officer))
    assert change in waiting
    assert f"<strong>{len(waiting)}</strong>" in home
    assert "3 days 2 h" in home
    assert "1 past the 2-day review SLA" in home
    inbox = client.get("/admin/workflows/changerequest/").content.decode()
    assert change.summary in inbox
    assert 'class="selected"' in inbox
    assert re.search(r'<li class="selected">\s*<a href="\?inbox=mine"', inbox)
    everything = client.get("/admin/workflows/changerequest/?inbox=all").content.decode()
    others = ChangeRequest.objects.filter(workflow__workspace=world.ws).exclude(
        pk__in=[c.pk for c in waiting]
    )
    assert others.exists()
    for other in others:
        assert f"/changerequest/{other.pk}/change/" in everything
        assert f"/changerequest/{other.pk}/change/" not in inbox


@pytest.mark.parametrize("role", ["auditor", "viewer", "workflow_operator", "workspace_owner"])
def test_nothing_waits_for_the_review_of_someone_who_may_not_review(shop, client, role):
    """A submitted change is visible to everyone of the workspace, but it waits only for those
    who may decide it: an auditor's home and inbox do not call it theirs."""
    from workflows.changes import services as change_services
    from workflows.changes.selectors import inbox_for

    change = new_workflow(shop)
    change_services.change_request_submit(actor=shop.users["workflow_builder"], change=change)
    assert change in inbox_for(shop.users["compliance_officer"])
    person = shop.users[role]
    assert list(inbox_for(person)) == []
    if role not in ("auditor", "workspace_owner"):
        return  # no control panel for them
    client.force_login(person)
    inbox = client.get("/admin/workflows/changerequest/").content.decode()
    assert f"/changerequest/{change.pk}/change/" not in inbox
    assert (
        f"/changerequest/{change.pk}/change/"
        in client.get("/admin/workflows/changerequest/?inbox=all").content.decode()
    )
    home = client.get("/admin/").content.decode()
    if "Changes waiting for my review" in home:
        assert "nothing waits for you" in home


def test_the_change_page_shows_each_approval_given_and_the_checklist_answers(shop, client):
    world = shop
    change = new_workflow(world, environment="production")
    services.change_request_submit(actor=world.users["workflow_builder"], change=change)
    change.refresh_from_db()
    tier = next(t for t in change.required_tiers if t["checklist"])
    officer = world.users["compliance_officer"] if tier["code"] == "compliance" else world.second_officer
    services.change_request_decide(
        actor=officer, change=change, tier=tier["code"], approve=True, comment="read it",
        checklist={"data_handling": True, "access_scope": True, "error_behaviour": True},
    )  # fmt: skip
    client.force_login(world.users["workflow_builder"])
    for url in (reverse("change-detail", args=[change.pk]),):
        body = client.get(url).content.decode()
        assert f"<strong>approved</strong> by {officer}" in body
        assert "Security-review checklist" in body
        assert body.count("✓ checked") == 3
        assert "✗ not checked" not in body
        if len(change.required_tiers) > 1:
            assert "not given yet" in body
    client.force_login(world.second_officer)
    body = client.get(reverse("admin:workflows_changerequest_change", args=[change.pk])).content.decode()
    assert body.count("✓ checked") == 3
