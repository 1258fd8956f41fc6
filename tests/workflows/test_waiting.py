"""Approved means it will apply: the portal applies what waits as soon as the policies allow,
officers and owners may *Apply now*, and every page says why an approved change waits."""

from __future__ import annotations

import copy
import threading
from datetime import datetime, time, timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from audit.models import AuditEvent
from governance.access.decision import AccessDenied
from governance.access.models import OnCallOverride
from governance.tenancy.models import Workspace
from tests.factories import UserFactory
from tests.workflows.conftest import TRIAGE, new_workflow
from workflows.changes import services, tasks
from workflows.changes.models import ChangeRequest, ChangeState, Workflow, WorkflowStatus
from workflows.changes.waiting import next_business_window

EVENING = datetime.fromisoformat("2026-06-16T18:30:00+00:00")  # Tuesday 20:30 in Berlin
LATE = datetime.fromisoformat("2026-06-16T21:00:00+00:00")  # Tuesday 23:00 in Berlin
WINDOW = datetime.fromisoformat("2026-06-17T07:00:00+00:00")  # Wednesday 09:00 in Berlin
MORNING = datetime.fromisoformat("2026-06-17T07:05:00+00:00")  # Wednesday 09:05 in Berlin
CHECKLIST = dict.fromkeys(("data_handling", "access_scope", "error_behaviour"), True)


def _reviewer(world, tier):
    return {
        "compliance": world.users["compliance_officer"],
        "security": world.second_officer,
        "manager": world.users["workflow_builder"].manager,
    }[tier]


def _approve(world, change, *, last_at=None):
    """Approve every tier of ``change``; the last approval at ``last_at`` (default: business hours)."""
    change = services.change_request_submit(actor=world.users["workflow_builder"], change=change)
    tiers = [t["code"] for t in change.required_tiers]
    for index, tier in enumerate(tiers):
        at = last_at if last_at is not None and index == len(tiers) - 1 else None
        with mock.patch("governance.access.policies.timezone.now", return_value=at) if at else _Nothing():
            change = services.change_request_decide(
                actor=_reviewer(world, tier), change=change, tier=tier, approve=True, comment="ok",
                checklist=CHECKLIST,
            )  # fmt: skip
    return change


class _Nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _production_approved_in_the_evening(world):
    change = _approve(world, new_workflow(world, environment="production"), last_at=EVENING)
    assert change.state == ChangeState.APPROVED
    return ChangeRequest.objects.get(pk=change.pk)


def test_a_production_change_approved_after_hours_waits_then_the_job_applies_it_as_the_portal(shop):
    """GIVEN a production change whose last approval came at 20:30 in Berlin WHEN the job runs
    that night THEN it waits, saying until when, without a new event each run; WHEN it runs at
    09:05 the next morning THEN the portal applies it, recording the approvals and the decision."""
    world = shop
    change = _production_approved_in_the_evening(world)
    assert change.deferred_until == WINDOW
    assert "Waits for business hours: the next window opens Wed 2026-06-17 09:00 Europe/Berlin" in (
        change.deferral_reason
    )
    deferred = AuditEvent.objects.filter(action="workflow.change.apply_deferred", target_id=str(change.pk))
    assert deferred.count() == 1

    assert services.changes_apply_due(at=LATE) == []
    assert services.changes_apply_due(at=LATE + timedelta(minutes=1)) == []
    change.refresh_from_db()
    assert change.state == ChangeState.APPROVED
    assert deferred.count() == 1  # the same reason is not recorded again every minute

    assert services.changes_apply_due(at=MORNING) == [change.pk]
    change.refresh_from_db()
    assert change.state == ChangeState.APPLIED
    assert (change.deferral_reason, change.deferred_until) == ("", None)
    workflow = Workflow.objects.get(pk=change.workflow_id)
    assert workflow.active_version_id == change.version_id
    assert workflow.status == WorkflowStatus.ACTIVE
    applied = AuditEvent.objects.get(action="workflow.change.applied", target_id=str(change.pk))
    assert (applied.actor_type, applied.actor_id) == ("system", None)
    assert applied.data["applied_by"] == "portal"
    assert applied.data["basis"]["approvals"] == list(
        change.approvals.order_by("decided_at", "id").values_list("pk", flat=True)
    )
    assert len(applied.data["basis"]["approvals"]) == len(change.required_tiers)
    assert applied.data["decision"]["allowed"] is True
    assert applied.data["decision"]["evaluated_at"].startswith("2026-06-17T07:05")
    activated = AuditEvent.objects.get(action="workflow.activated", target_id=str(workflow.pk))
    assert activated.actor_type == "system"
    assert services.changes_apply_due(at=MORNING) == []  # idempotent


def test_the_author_hears_why_an_approved_change_waits(shop, django_capture_on_commit_callbacks):
    """GIVEN the last approval after hours WHEN the author is e-mailed the decision THEN the mail
    says the change is not applied yet, and until when it waits."""
    from django.core import mail

    with django_capture_on_commit_callbacks(execute=True):
        _production_approved_in_the_evening(shop)
    assert "Not applied yet: Waits for business hours" in mail.outbox[-1].body
    assert mail.outbox[-1].to == ["workflow_builder@acme.test"]


def test_the_job_applies_a_change_whose_last_approver_may_not_activate(shop):
    """GIVEN the builder's manager, without any role in the workspace, gives the last (manager)
    approval WHEN it is recorded THEN the change waits and says why; WHEN the job runs THEN the
    portal applies it on the approvals' authority."""
    world = shop
    manager = UserFactory(organization=world.org, email="boss@acme.test", region="EU")
    builder = world.users["workflow_builder"]
    builder.manager = manager
    builder.save(update_fields=["manager"])
    definition = copy.deepcopy(TRIAGE)
    definition["steps"][3]["next"] = "pay"
    definition["steps"].append({"id": "pay", "type": "http_request", "integration": "payroll",
                                "method": "POST", "path": "/export", "next": None})  # fmt: skip
    change = _approve(world, new_workflow(world, slug="payroll", definition=definition))
    assert [t["code"] for t in change.required_tiers][-1] == "manager"
    change = ChangeRequest.objects.get(pk=change.pk)
    assert change.state == ChangeState.APPROVED
    assert "The last approver, boss@acme.test, may not activate workflows in this workspace." in (
        change.deferral_reason
    )
    assert "applies automatically within a minute" in change.deferral_reason

    assert tasks.changes_apply_due.apply().get() == 1
    change.refresh_from_db()
    assert change.state == ChangeState.APPLIED
    applied = AuditEvent.objects.get(action="workflow.change.applied", target_id=str(change.pk))
    assert applied.actor_type == "system"
    manager_approval = change.approvals.get(tier="manager")
    assert manager_approval.pk in applied.data["basis"]["approvals"]


def test_an_on_call_override_lets_the_job_apply_outside_business_hours(shop):
    """GIVEN a production change waiting for business hours WHEN an officer's on-call override
    starts THEN the job applies it at once, naming the override in its decision; the override of
    someone whose role does not activate workflows does not count."""
    world = shop
    change = _production_approved_in_the_evening(world)
    OnCallOverride.objects.create(
        user=world.users["workflow_operator"], workspace=world.ws, reason="pager", starts_at=EVENING,
        ends_at=EVENING + timedelta(hours=6),
    )  # fmt: skip
    assert services.changes_apply_due(at=LATE) == []
    # The first approver's override (the last approver, who is not on call, is refused).
    override = OnCallOverride.objects.create(
        user=world.users["compliance_officer"], workspace=world.ws, reason="incident 7", starts_at=LATE,
        ends_at=LATE + timedelta(hours=2),
    )  # fmt: skip
    assert services.changes_apply_due(at=LATE + timedelta(minutes=1)) == [change.pk]
    applied = AuditEvent.objects.get(action="workflow.change.applied", target_id=str(change.pk))
    assert applied.actor_type == "system"
    assert applied.data["decision"]["on_call_override"] == override.pk
    assert applied.data["decision"]["on_call_holder"] == world.users["compliance_officer"].email


def test_apply_now_by_an_officer_in_business_hours_applies(shop):
    """GIVEN a change waiting since the evening WHEN an officer presses Apply now at 09:05 THEN
    it is applied in their name, on the basis of the approvals."""
    world = shop
    change = _production_approved_in_the_evening(world)
    officer = world.users["compliance_officer"]
    applied = services.change_request_apply_now(actor=officer, change=change, at=MORNING)
    assert applied.state == ChangeState.APPLIED
    event = AuditEvent.objects.get(action="workflow.change.applied", target_id=str(change.pk))
    assert (event.actor_type, event.actor_id, event.data["applied_by"]) == ("user", officer.pk, "apply_now")
    assert len(event.data["basis"]["approvals"]) == len(change.required_tiers)


def test_apply_now_outside_business_hours_is_refused_with_the_reason(shop):
    """GIVEN a waiting production change WHEN an officer without an override presses Apply now at
    23:00 THEN it is refused by the business-hours policy, the refusal is recorded, and the change
    still says until when it waits."""
    world = shop
    change = _production_approved_in_the_evening(world)
    officer = world.users["compliance_officer"]
    with pytest.raises(AccessDenied, match="production-business-hours"):
        services.change_request_apply_now(actor=officer, change=change, at=LATE)
    change.refresh_from_db()
    assert change.state == ChangeState.APPROVED
    assert change.deferred_until == WINDOW
    refusal = AuditEvent.objects.filter(
        action="workflow.change.apply_deferred", target_id=str(change.pk), actor_id=officer.pk
    ).get()
    assert refusal.data["refused_to"]["policies"] == ["production-business-hours"]


@pytest.mark.parametrize("role", ["viewer", "workflow_builder", "workflow_operator"])
def test_apply_now_is_forbidden_to_roles_that_do_not_activate(shop, role):
    """GIVEN a waiting change WHEN a viewer, builder or operator asks to apply it THEN the decision
    point refuses and nothing is recorded on the change."""
    world = shop
    change = _production_approved_in_the_evening(world)
    with pytest.raises(AccessDenied, match="may not activate"):
        services.change_request_apply_now(actor=world.users[role], change=change, at=MORNING)
    change.refresh_from_db()
    assert change.state == ChangeState.APPROVED
    assert not AuditEvent.objects.filter(
        action="workflow.change.apply_deferred", actor_id=world.users[role].pk
    )


def test_apply_now_keeps_segregation_of_duties(shop):
    """GIVEN an owner who wrote the change WHEN they press Apply now THEN it is refused."""
    world = shop
    owner = world.users["workspace_owner"]
    change = new_workflow(world, environment="production")
    ChangeRequest.objects.filter(pk=change.pk).update(author=owner)
    change.refresh_from_db()
    change = services.change_request_submit(actor=owner, change=change)
    for tier in [t["code"] for t in change.required_tiers]:
        with mock.patch("governance.access.policies.timezone.now", return_value=EVENING):
            change = services.change_request_decide(
                actor=_reviewer(world, tier), change=change, tier=tier, approve=True, comment="ok",
                checklist=CHECKLIST,
            )  # fmt: skip
    assert change.state == ChangeState.APPROVED
    with pytest.raises(ValidationError, match="You wrote this change"):
        services.change_request_apply_now(actor=owner, change=change, at=MORNING)


@pytest.mark.django_db(transaction=True)
def test_two_job_runs_at_once_apply_a_change_exactly_once():
    """GIVEN a waiting change WHEN two workers run the job at the same moment THEN it is applied
    once: one event, one activation."""
    from tests.conftest import build_world
    from tests.workflows.conftest import BUSINESS_HOURS, shop

    with mock.patch("governance.access.policies.timezone.now", return_value=BUSINESS_HOURS):
        world = shop.__wrapped__(build_world())
        change = _production_approved_in_the_evening(world)
    barrier, results, errors = threading.Barrier(2), [], []

    def run():
        try:
            barrier.wait()
            results.append(services.changes_apply_due(at=MORNING))
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [[], [change.pk]]
    assert AuditEvent.objects.filter(action="workflow.change.applied", target_id=str(change.pk)).count() == 1
    assert AuditEvent.objects.filter(action="workflow.activated").count() == 1


def test_the_next_window_skips_the_weekend_and_honours_the_time_zone(shop):
    """GIVEN Friday 19:00 in Berlin WHEN the next window is asked THEN it is Monday 09:00 Berlin."""
    friday_evening = datetime.fromisoformat("2026-06-19T17:00:00+00:00")
    assert next_business_window(shop.ws, friday_evening) == datetime.fromisoformat(
        "2026-06-22T07:00:00+00:00"
    )
    assert next_business_window(shop.ws, MORNING) == MORNING  # within business hours: now


def test_pages_and_inbox_say_why_it_waits_and_offer_apply_now_to_officers_only(shop, client):
    """GIVEN a waiting change WHEN an officer opens it in the control panel or the builders' page,
    or the inbox's "waiting to apply" list THEN each says why and until when; the officer gets
    Apply now (refused with the reason after hours); the builder gets neither button nor action."""
    world = shop
    change = _production_approved_in_the_evening(world)
    officer = world.users["compliance_officer"]
    client.force_login(officer)
    page = client.get(reverse("admin:workflows_changerequest_change", args=[change.pk])).content.decode()
    assert "waits until Wed 2026-06-17 09:00 Europe/Berlin" in page
    assert "Waits for business hours" in page
    assert "Apply now" in page
    inbox = client.get(reverse("admin:workflows_changerequest_changelist"), {"inbox": "approved"})
    assert [c.pk for c in inbox.context["cl"].result_list] == [change.pk]
    assert "next window opens Wed 2026-06-17 09:00 Europe/Berlin" in inbox.content.decode()
    builder_page = client.get(reverse("change-detail", args=[change.pk])).content.decode()
    assert "Waits for business hours" in builder_page
    assert "Apply now" in builder_page

    # It is Tuesday 10:00 in Berlin (the session's clock); business hours that begin at 11:00 make
    # it after hours.
    Workspace.objects.filter(pk=world.ws.pk).update(business_hours_start=time(11, 0))
    refused = client.post(reverse("admin:workflows_changerequest_apply", args=[change.pk]), follow=True)
    assert "Not applied: Denied by policy production-business-hours" in refused.content.decode()
    assert ChangeRequest.objects.get(pk=change.pk).state == ChangeState.APPROVED

    client.force_login(world.users["workflow_builder"])
    builder_page = client.get(reverse("change-detail", args=[change.pk])).content.decode()
    assert "Waits for business hours" in builder_page
    assert "Apply now" not in builder_page
    assert client.post(reverse("change-apply", args=[change.pk])).status_code == 403

    client.force_login(officer)
    Workspace.objects.filter(pk=world.ws.pk).update(business_hours_start=time(9, 0))
    done = client.post(reverse("change-apply", args=[change.pk]), follow=True)
    assert "Applied" in done.content.decode()
    assert ChangeRequest.objects.get(pk=change.pk).state == ChangeState.APPLIED


def test_the_api_applies_now_for_an_officer_and_refuses_others_with_403(shop):
    """GIVEN a waiting change WHEN a viewer posts to its apply route THEN 403; WHEN after hours an
    officer does THEN 403 with the policy's reason; WHEN in hours THEN it is applied."""
    from rest_framework.test import APIClient

    world = shop
    change = _production_approved_in_the_evening(world)
    url = reverse("api-change-apply", args=[change.pk])
    client = APIClient()
    client.force_authenticate(world.users["viewer"])
    listed = client.get(reverse("api-change-detail", args=[change.pk])).json()
    assert listed["deferred_until"].startswith("2026-06-17T07:00")
    assert "Waits for business hours" in listed["deferral_reason"]
    assert client.post(url).status_code == 403
    client.force_authenticate(world.users["compliance_officer"])
    Workspace.objects.filter(pk=world.ws.pk).update(business_hours_start=time(11, 0))
    refused = client.post(url)
    assert refused.status_code == 403
    assert "production-business-hours" in refused.json()["detail"]
    Workspace.objects.filter(pk=world.ws.pk).update(business_hours_start=time(9, 0))
    applied = client.post(url)
    assert applied.status_code == 200, applied.json()
    assert applied.json()["state"] == ChangeState.APPLIED
    assert applied.json()["deferral_reason"] == ""


def test_a_policy_no_hour_satisfies_keeps_it_waiting_with_the_policy_quoted(shop):
    """GIVEN an organisation policy that freezes staging activations WHEN a staging change is fully
    approved THEN it waits with the policy's message and no due time, the job leaves it approved,
    and an officer's Apply now is refused with the same policy; WHEN the policy is switched off
    THEN the next run applies it."""
    from governance.access.models import Policy

    world = shop
    freeze = Policy.objects.create(
        organization=world.org,
        name="staging-freeze",
        text='@id("staging-freeze")\n@message("Denied by policy staging-freeze: staging is frozen.")\n'
        'forbid(principal, action == Portal::Action::"workflow.activate", resource is Portal::Workflow)\n'
        'when { resource.environment == "staging" };\n',
    )
    change = ChangeRequest.objects.get(pk=_approve(world, new_workflow(world)).pk)
    assert change.state == ChangeState.APPROVED
    assert "The policies do not let it apply: Denied by policy staging-freeze: staging is frozen." in (
        change.deferral_reason
    )
    assert change.deferred_until is None
    assert services.changes_apply_due(at=MORNING) == []
    with pytest.raises(AccessDenied, match="staging-freeze"):
        services.change_request_apply_now(actor=world.users["compliance_officer"], change=change, at=MORNING)
    Policy.objects.filter(pk=freeze.pk).update(enabled=False)
    assert services.changes_apply_due(at=MORNING) == [change.pk]


def _payroll_change(world, *, manager_region="EU"):
    """A change that needs the manager tier last, given by a manager without a workspace role."""
    manager = UserFactory(organization=world.org, email="boss@acme.test", region=manager_region)
    builder = world.users["workflow_builder"]
    builder.manager = manager
    builder.save(update_fields=["manager"])
    definition = copy.deepcopy(TRIAGE)
    definition["steps"][3]["next"] = "pay"
    definition["steps"].append({"id": "pay", "type": "http_request", "integration": "payroll",
                                "method": "POST", "path": "/export", "next": None})  # fmt: skip
    return new_workflow(world, slug="payroll", definition=definition)


def test_an_approver_deactivated_after_approving_no_longer_counts(shop):
    """GIVEN a production change waiting for business hours WHEN its compliance approver is then
    deactivated THEN the job does not apply it in the morning, and the change, the inbox and the
    API say which approval lapsed and why; WHEN the account is active again THEN it applies."""
    from rest_framework.test import APIClient

    world = shop
    change = _production_approved_in_the_evening(world)
    officer = world.users["compliance_officer"]
    type(officer).objects.filter(pk=officer.pk).update(is_active=False)
    assert services.changes_apply_due(at=MORNING) == []
    change.refresh_from_db()
    assert change.state == ChangeState.APPROVED
    lapse = (
        "The compliance approval of compliance_officer@acme.test no longer holds: the account is deactivated."
    )
    assert lapse in change.deferral_reason
    assert change.deferred_until is None
    api = APIClient()
    api.force_authenticate(world.second_officer)
    assert lapse in api.get(reverse("api-change-detail", args=[change.pk])).json()["deferral_reason"]
    with pytest.raises(ValidationError, match="no longer holds: the account is deactivated"):
        services.change_request_apply_now(actor=world.second_officer, change=change, at=MORNING)

    type(officer).objects.filter(pk=officer.pk).update(is_active=True)
    assert services.changes_apply_due(at=MORNING) == [change.pk]


def test_an_approver_stripped_of_the_reviewing_role_no_longer_counts(shop, client):
    """GIVEN a waiting change WHEN the officer who approved it loses the role that reviews changes
    THEN the portal does not apply it and the pages name the lapsed approval."""
    from governance.tenancy.models import Membership

    world = shop
    change = _production_approved_in_the_evening(world)
    Membership.objects.filter(user=world.users["compliance_officer"]).delete()
    assert services.changes_apply_due(at=MORNING) == []
    change.refresh_from_db()
    assert change.state == ChangeState.APPROVED
    assert (
        "The compliance approval of compliance_officer@acme.test no longer holds: none of their roles "
        "approves this workspace's changes any more."
    ) in change.deferral_reason
    client.force_login(world.second_officer)
    page = client.get(reverse("admin:workflows_changerequest_change", args=[change.pk])).content.decode()
    assert "compliance approval of compliance_officer@acme.test no longer holds" in page
    inbox = client.get(reverse("admin:workflows_changerequest_changelist"), {"inbox": "approved"})
    assert "compliance approval of compliance_officer@acme.test no longer holds" in inbox.content.decode()


def test_the_change_page_tells_a_lapse_before_the_job_has_run(shop, client):
    """GIVEN a change waiting for business hours WHEN its compliance approver is deactivated and
    an officer opens the change before the job runs THEN the page already names the lapse."""
    world = shop
    change = _production_approved_in_the_evening(world)
    officer = world.users["compliance_officer"]
    type(officer).objects.filter(pk=officer.pk).update(is_active=False)
    client.force_login(world.second_officer)
    page = client.get(reverse("admin:workflows_changerequest_change", args=[change.pk])).content.decode()
    assert "compliance approval of compliance_officer@acme.test no longer holds" in page
    assert "Waits for business hours" not in page


def test_an_earlier_approval_that_lapsed_keeps_the_last_approval_from_applying(shop):
    """GIVEN the compliance approval given, then its officer deactivated WHEN the security
    approver (who may activate) gives the last approval in business hours THEN the change does
    not apply and says why."""
    world = shop
    change = new_workflow(world, definition={**TRIAGE, "steps": [*TRIAGE["steps"][:3], {
        **TRIAGE["steps"][3], "next": "classify"}, AI_STEP_FOR_TEST]})  # fmt: skip
    change = services.change_request_submit(actor=world.users["workflow_builder"], change=change)
    assert [t["code"] for t in change.required_tiers] == ["compliance", "security"]
    change = services.change_request_decide(
        actor=world.users["compliance_officer"], change=change, tier="compliance", approve=True, comment="ok"
    )
    type(world.users["compliance_officer"]).objects.filter(pk=world.users["compliance_officer"].pk).update(
        is_active=False
    )
    change = services.change_request_decide(
        actor=world.second_officer, change=change, tier="security", approve=True, comment="ok"
    )
    change = ChangeRequest.objects.get(pk=change.pk)
    assert change.state == ChangeState.APPROVED
    assert "no longer holds: the account is deactivated" in change.deferral_reason


def test_a_manager_of_another_region_may_not_approve_and_their_approval_does_not_count(shop):
    """GIVEN a change needing the manager tier WHEN the author's manager works in another region
    THEN they may not approve it (region-data-residency); GIVEN their approval was given while
    they were in the workflow's region WHEN they move THEN it lapses and the job does not apply it."""
    world = shop
    change = _payroll_change(world, manager_region="US")
    change = services.change_request_submit(actor=world.users["workflow_builder"], change=change)
    manager = world.users["workflow_builder"].manager
    with pytest.raises(AccessDenied, match="region-data-residency"):
        services.change_request_decide(
            actor=manager, change=change, tier="manager", approve=True, comment="ok"
        )

    type(manager).objects.filter(pk=manager.pk).update(region="EU")
    manager.refresh_from_db()
    for tier in [t["code"] for t in change.required_tiers]:
        change = services.change_request_decide(
            actor=_reviewer(world, tier), change=change, tier=tier, approve=True, comment="ok",
            checklist=CHECKLIST,
        )  # fmt: skip
    assert change.state == ChangeState.APPROVED
    type(manager).objects.filter(pk=manager.pk).update(region="US")
    assert services.changes_apply_due(at=MORNING) == []
    change.refresh_from_db()
    assert (
        "The manager approval of boss@acme.test no longer holds: Denied by policy region-data-residency"
        in (change.deferral_reason)
    )


def test_a_manager_of_another_region_is_refused_as_a_recorded_denial(shop):
    """GIVEN a change needing the manager tier and a manager in another region WHEN the manager
    decides it in a request THEN the refusal quotes the region rule and joins the request's
    denials (which the ledger records with the 403), with the workflow's workspace."""
    from governance.core.context import ActorContext, bind_context

    world = shop
    change = services.change_request_submit(
        actor=world.users["workflow_builder"], change=_payroll_change(world, manager_region="US")
    )
    manager = world.users["workflow_builder"].manager
    context = ActorContext(actor=manager)
    with bind_context(context), pytest.raises(AccessDenied, match="region-data-residency"):
        services.change_request_decide(
            actor=manager, change=change, tier="manager", approve=True, comment="ok"
        )
    [denial] = [d for d in context.denials if d.policies]
    assert (denial.action, denial.policies, denial.workspace_id) == (
        "workflow.approve", ("region-data-residency",), world.ws.pk
    )  # fmt: skip
    assert denial.sensitive
    assert not change.approvals.exists()


def test_the_job_asks_the_policies_about_the_last_approver_not_a_favourable_portal(shop):
    """GIVEN a policy that refuses activations to people whose security training lapsed, and a
    last (manager) approver whose training lapsed WHEN the job runs THEN it does not apply the
    change and quotes the policy; WHEN the approver's training is renewed THEN it applies, with
    the system as actor and the last approval recorded as the one the policies were asked about."""
    from datetime import date

    from governance.access.models import Policy

    world = shop
    Policy.objects.create(
        organization=world.org,
        name="trained-activators",
        text='@id("trained-activators")\n'
        '@message("Denied by policy trained-activators: your security training has lapsed.")\n'
        'forbid(principal, action == Portal::Action::"workflow.activate", resource is Portal::Workflow)\n'
        "unless { principal.training_current };\n",
    )
    change = _approve(world, _payroll_change(world))
    manager = world.users["workflow_builder"].manager
    assert change.state == ChangeState.APPROVED
    assert services.changes_apply_due(at=MORNING) == []
    change.refresh_from_db()
    assert "Denied by policy trained-activators" in change.deferral_reason

    type(manager).objects.filter(pk=manager.pk).update(security_training_expires_on=date(2027, 1, 1))
    assert services.changes_apply_due(at=MORNING) == [change.pk]
    applied = AuditEvent.objects.get(action="workflow.change.applied", target_id=str(change.pk))
    assert (applied.actor_type, applied.actor_id) == ("system", None)
    last = change.approvals.get(tier="manager")
    assert applied.data["decision"]["evaluated_for"] == {"approval": last.pk, "reviewer": manager.pk}
    assert applied.data["basis"]["approvals"][-1] == last.pk


AI_STEP_FOR_TEST = {"id": "classify", "type": "ai_prompt", "provider": "llm", "model": "small-eu",
                    "prompt": "Classify: {{ticket}}", "output_schema": {"type": "object"},
                    "guardrails": {"redact_pii": True, "max_tokens": 200}, "next": None}  # fmt: skip
