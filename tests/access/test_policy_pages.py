"""Policies in the control panel (propose, decide, try) and the on-call page, as people use them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from governance.access.models import OnCallOverride, Policy, PolicyChange
from tests.conftest import member
from tests.factories import UserFactory

RULE = """@id("weekend-freeze")
@message("Denied by policy weekend-freeze: no production changes at weekends.")
forbid(principal, action == Portal::Action::"workflow.edit", resource is Portal::Workflow)
when { resource.environment == "production" && !context.within_business_hours };
"""


@pytest.fixture
def second_officer(world):
    officer = UserFactory(organization=world.org, email="officer2@acme.test")
    member(officer, "compliance_officer", world.sibling)
    return officer


def test_officer_proposes_in_the_form_and_another_approves(world, client, second_officer):
    client.force_login(world.users["compliance_officer"])
    response = client.post(
        reverse("admin:access_policychange_add"),
        {"name": "weekend-freeze", "text": RULE, "enabled": "on", "reason": "change freeze"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    change = PolicyChange.objects.get(name="weekend-freeze")
    page = client.get(reverse("admin:access_policychange_change", args=[change.pk])).content.decode()
    assert "Waiting for another compliance officer" in page
    assert client.get(reverse("admin:access_policychange_decide", args=[change.pk])).status_code == 200
    refused = client.post(
        reverse("admin:access_policychange_decide", args=[change.pk]),
        {"decision": "approve", "comment": "mine"},
    )
    assert "another compliance officer must decide" in refused.content.decode()

    client.force_login(second_officer)
    page = client.get(reverse("admin:access_policychange_change", args=[change.pk])).content.decode()
    assert "Approve or reject" in page
    assert "+@id(&quot;weekend-freeze&quot;)" in page
    missing_comment = client.post(
        reverse("admin:access_policychange_decide", args=[change.pk]), {"decision": "approve"}
    )
    assert "This field is required" in missing_comment.content.decode()
    done = client.post(
        reverse("admin:access_policychange_decide", args=[change.pk]),
        {"decision": "approve", "comment": "agreed"},
        follow=True,
    )
    assert "is now in force" in done.content.decode()
    assert Policy.objects.get(name="weekend-freeze").organization == world.org


def test_bad_policy_text_in_the_form_shows_the_line_and_saves_nothing(world, client):
    client.force_login(world.users["compliance_officer"])
    broken = RULE.replace("resource.environment", "resource.enviroment")
    before = (PolicyChange.objects.count(), AuditEvent.objects.count())
    response = client.post(
        reverse("admin:access_policychange_add"),
        {"name": "weekend-freeze", "text": broken, "enabled": "on", "reason": "freeze"},
    )
    assert response.status_code == 200
    assert "line 4: attribute `enviroment`" in response.content.decode()
    assert (PolicyChange.objects.count(), AuditEvent.objects.count()) == before


def test_propose_a_change_to_a_shipped_policy_starts_from_its_text(world, client):
    client.force_login(world.users["compliance_officer"])
    shipped = Policy.objects.get(name="production-business-hours", organization__isnull=True)
    page = client.get(reverse("admin:access_policychange_add"), {"policy": shipped.pk}).content.decode()
    assert "production-business-hours" in page
    assert "Request an on-call override." in page


def test_a_shipped_policy_is_shown_not_offered_for_typing(world, client):
    """GIVEN a shipped policy WHEN an officer opens "Propose a change" from its page THEN its text
    is shown without a text box, and the page says why and what to do instead."""
    client.force_login(world.users["compliance_officer"])
    shipped = Policy.objects.get(name="production-business-hours", organization__isnull=True)
    policy_page = client.get(reverse("admin:access_policy_change", args=[shipped.pk])).content.decode()
    assert "Switch off in my workspaces" in policy_page
    page = client.get(reverse("admin:access_policychange_add"), {"policy": shipped.pk}).content.decode()
    assert '<textarea name="text"' not in page
    assert '<pre class="shown-value" id="id_text">@id(&quot;production-business-hours&quot;)' in page
    assert "same for every organisation" in page
    assert "propose a policy of your own" in page
    assert 'name="disabled_workspaces"' in page


def test_switching_a_shipped_policy_off_as_the_page_posts_waits_for_a_second_officer(world, client):
    """GIVEN the shipped policy's page WHEN the officer picks a workspace and a reason and sends
    what the browser sends (disabled fields are not posted) THEN a proposal with the shipped text
    waits for another officer, recorded in the ledger."""
    client.force_login(world.users["compliance_officer"])
    shipped = Policy.objects.get(name="production-business-hours", organization__isnull=True)
    url = reverse("admin:access_policychange_add") + f"?policy={shipped.pk}"
    response = client.post(
        url, {"policy": shipped.pk, "disabled_workspaces": [world.ws.pk], "reason": "EU team on call"}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    change = PolicyChange.objects.get(policy=shipped)
    assert change.status == "pending"
    assert change.text == shipped.text
    assert change.enabled
    assert list(change.disabled_workspaces.all()) == [world.ws]
    assert change.proposed_by == world.users["compliance_officer"]
    assert AuditEvent.objects.filter(action="policy.change_proposed", target_id=str(change.pk)).exists()
    shipped.refresh_from_db()
    assert not shipped.disabled_workspaces.exists()  # nothing in force before the second officer


def test_a_typed_text_posted_for_a_shipped_policy_is_never_stored_as_its_change(world, client):
    """GIVEN a post that carries an edited text for a shipped policy (an old page, a hand-made
    request) THEN the shipped text is what the proposal holds: nobody's typing edits it for all."""
    client.force_login(world.users["compliance_officer"])
    shipped = Policy.objects.get(name="production-business-hours", organization__isnull=True)
    client.post(
        reverse("admin:access_policychange_add"),
        {"policy": shipped.pk, "text": RULE, "enabled": "", "reason": "mine now"},
    )
    change = PolicyChange.objects.get(policy=shipped)
    assert (change.text, change.enabled) == (shipped.text, True)


def test_a_refused_proposal_shows_the_typed_text_again_with_the_field_error(world, client):
    """GIVEN a policy of the organisation named weekend-freeze WHEN an officer proposes a new
    policy under that name THEN the form comes back with the name's error and the text as typed,
    and nothing is saved."""
    Policy.objects.create(organization=world.org, name="weekend-freeze", text=RULE)
    client.force_login(world.users["compliance_officer"])
    before = (PolicyChange.objects.count(), AuditEvent.objects.count())
    typed = RULE.replace("weekend-freeze", "weekend-freeze").replace("at weekends", "on Saturdays")
    response = client.post(
        reverse("admin:access_policychange_add"),
        {"name": "weekend-freeze", "text": typed, "enabled": "on", "reason": "tighter"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "A policy with this name exists" in page
    assert "no production changes on Saturdays." in page
    assert "tighter" in page
    assert (PolicyChange.objects.count(), AuditEvent.objects.count()) == before


def test_try_it_shows_the_decision_and_the_deciding_policy(world, client):
    client.force_login(world.users["auditor"])
    response = client.get(reverse("admin:access_policy_try"), {
        "subject": world.users["workflow_builder"].pk, "action": "workflow.edit", "kind": "Workflow",
        "workspace": world.ws.pk, "data_region": "EU", "environment": "production", "sensitivity": "none",
        "when": "2026-06-16 17:40"})  # fmt: skip
    body = response.content.decode()
    assert "Denied" in body
    assert "production-business-hours" in body
    assert "it is 19:40 in Europe/Berlin, outside 09:00–18:00" in body


def test_try_it_with_a_draft_and_bad_input(world, client):
    builder = world.users["workflow_builder"]
    builder.region = "EU"  # without a region, region-data-residency forbids everything on workflows
    builder.save(update_fields=["region"])
    client.force_login(world.users["compliance_officer"])
    base = {
        "subject": world.users["workflow_builder"].pk,
        "action": "workflow.edit",
        "kind": "Workflow",
        "workspace": world.ws.pk,
        "data_region": "EU",
        "environment": "staging",
        "when": "2026-06-16 10:00",
    }
    assert "Allowed" in client.get(reverse("admin:access_policy_try"), base).content.decode()
    draft = RULE.replace('resource.environment == "production"', 'resource.environment == "staging"')
    drafted = client.get(
        reverse("admin:access_policy_try"), {**base, "when": "2026-06-20 10:00", "draft": draft}
    )
    assert "weekend-freeze" in drafted.content.decode()
    bad = client.get(reverse("admin:access_policy_try"), {**base, "when": "someday", "subject": "x"})
    assert bad.status_code == 200
    assert "Enter a valid date/time" in bad.content.decode()
    assert client.get(reverse("admin:access_policy_try")).status_code == 200


def test_on_call_page_for_an_operator(world, client):
    client.force_login(world.users["workflow_operator"])
    assert "On call" in client.get(reverse("home")).content.decode()
    bad = client.post(reverse("oncall"), {"workspace": world.ws.pk, "reason": "short", "hours": 20})
    assert bad.status_code == 200
    body = bad.content.decode()
    assert "at least 10 characters" in body
    assert "less than or equal to 12" in body
    assert not OnCallOverride.objects.filter(user=world.users["workflow_operator"], reason="short").exists()
    foreign = client.post(
        reverse("oncall"), {"workspace": world.foreign.pk, "reason": "incident in globex", "hours": 1}
    )
    assert "Select a valid choice" in foreign.content.decode()
    ok = client.post(
        reverse("oncall"),
        {"workspace": world.ws.pk, "reason": "INC-4711 payroll stuck", "hours": 2},
        follow=True,
    )
    assert "compliance officers were notified" in ok.content.decode()
    override = OnCallOverride.objects.get(reason="INC-4711 payroll stuck")
    client.post(reverse("oncall-end", args=[override.pk]))
    override.refresh_from_db()
    assert override.ended_at is not None


def test_control_panel_index_shows_posture(world, client):
    client.force_login(world.users["compliance_officer"])
    body = client.get(reverse("admin:index")).content.decode()
    assert "On-call overrides active" in body
    assert f"{world.users['workflow_operator']} in Ops EU" in body  # the world's active override
    assert "Policy changes waiting for a decision" in body
    assert "awaiting sealing" in body


def test_403_page_explains_the_refusal(world, client):
    client.force_login(world.users["auditor"])
    url = reverse("admin:tenancy_membership_delete", args=[world.memberships["viewer"].pk])
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 403


def test_policy_page_shows_only_my_organisations_switches(world, client):
    shipped = Policy.objects.get(name="production-business-hours", organization__isnull=True)
    shipped.disabled_workspaces.add(world.ws, world.foreign)
    client.force_login(world.users["auditor"])
    body = client.get(reverse("admin:access_policy_change", args=[shipped.pk])).content.decode()
    assert "Ops EU" in body
    assert "Globex Ops" not in body
