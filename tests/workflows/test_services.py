"""The change journey: builder submits, officers approve tier by tier, the version goes live."""

from __future__ import annotations

import copy
import threading
from datetime import datetime
from unittest import mock

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection

from audit.models import AuditEvent
from governance.access.decision import AccessDenied
from governance.core.errors import ReasonedRefusal
from tests.workflows.conftest import AI_STEP, TRIAGE, new_workflow
from workflows.changes import services
from workflows.changes.models import ChangeState, Workflow, WorkflowStatus


def submit(world, change):
    return services.change_request_submit(actor=world.users["workflow_builder"], change=change)


def test_full_journey_builder_to_active_version(shop, django_capture_on_commit_callbacks):
    world = shop
    with django_capture_on_commit_callbacks(execute=True):
        change = submit(world, new_workflow(world))
    # A new workflow connects its integrations for the first time: security reviews that too.
    assert [t["code"] for t in change.required_tiers] == ["compliance", "security"]
    assert "compliance_officer@acme.test" in mail.outbox[-1].to
    with django_capture_on_commit_callbacks(execute=True):
        services.change_request_decide(
            actor=world.users["compliance_officer"],
            change=change,
            tier="compliance",
            approve=True,
            comment="fine",
        )
        change = services.change_request_decide(
            actor=world.second_officer, change=change, tier="security", approve=True, comment="crm is fine"
        )
    assert change.state == ChangeState.APPLIED
    workflow = Workflow.objects.get(pk=change.workflow_id)
    assert workflow.status == WorkflowStatus.ACTIVE
    assert workflow.active_version == change.version
    assert mail.outbox[-1].to == ["workflow_builder@acme.test"]
    # Both decisions committed together: the author gets one mail for each, as each was made.
    to_author = [m for m in mail.outbox if m.to == ["workflow_builder@acme.test"]]
    assert [(m.subject.rsplit(" is ", 1)[-1], m.body.split(":")[0]) for m in to_author] == [
        ("in review", f"{world.users['compliance_officer']} decided the compliance approval"),
        ("applied", f"{world.second_officer} decided the security approval"),
    ]
    actions = list(AuditEvent.objects.filter(category="workflow_lifecycle").order_by("id")
                   .values_list("action", flat=True))  # fmt: skip
    assert actions == [
        "workflow.created",
        "workflow.version.created",
        "workflow.change.submitted",
        "workflow.change.approved",
        "workflow.change.approved",
        "workflow.change.applied",
        "workflow.activated",
    ]
    submitted = AuditEvent.objects.get(action="workflow.change.submitted")
    assert submitted.data["diff"]["new_workflow"] is True


def _edited(world, change, mutate, **workflow_changes):
    Workflow.objects.filter(pk=change.workflow_id).update(**workflow_changes) if workflow_changes else None
    definition = copy.deepcopy(change.version.definition)
    mutate(definition)
    workflow = Workflow.objects.get(pk=change.workflow_id)
    return services.workflow_version_create(
        actor=world.users["workflow_builder"],
        workflow=workflow,
        definition=definition,
        base_version=change.version,
        summary="edit",
    )


def _activate(world, change):
    change = submit(world, change)
    for tier in [t["code"] for t in change.required_tiers]:
        reviewer = {
            "compliance": world.users["compliance_officer"],
            "privacy": world.second_officer,
            "security": world.second_officer,
            "manager": world.users["workspace_owner"],
        }[tier]
        change = services.change_request_decide(
            actor=reviewer,
            change=change,
            tier=tier,
            approve=True,
            comment="ok",
            checklist=dict.fromkeys(("data_handling", "access_scope", "error_behaviour"), True),
        )
    return change


def add_ai(d):
    d["steps"].append(AI_STEP)
    d["steps"][3]["next"] = "classify"


def add_payroll(d):
    d["steps"].append({"id": "pay", "type": "http_request", "integration": "payroll", "method": "POST",
                       "path": "/export", "next": None})  # fmt: skip
    d["steps"][3]["next"] = "pay"


def swap_crm_for_hris(d):
    d["steps"][0]["integration"] = "hris"


def retitle(d):
    d["steps"][3]["expression"] = "ticket.tags + ['seen']"


# What the diff touched → the tiers it needs (every change also needs compliance).
TIER_TABLE = [
    ("staging, cosmetic edit", {}, retitle, ["compliance"]),
    ("production adds the checklist", {"environment": "production"}, retitle, ["compliance"]),
    ("PII workflow", {"handles_pii": True}, retitle, ["compliance", "privacy"]),
    ("AI step added", {}, add_ai, ["compliance", "security"]),
    ("financial integration added", {}, add_payroll, ["compliance", "security", "manager"]),
    ("integration reference changed to HR", {}, swap_crm_for_hris, ["compliance", "security", "manager"]),
    ("PII and AI", {"handles_pii": True}, add_ai, ["compliance", "privacy", "security"]),
]


@pytest.mark.parametrize(
    ("case", "workflow_changes", "mutate", "tiers"), TIER_TABLE, ids=[row[0] for row in TIER_TABLE]
)
def test_tier_derivation(shop, case, workflow_changes, mutate, tiers):
    world = shop
    first = _activate(world, new_workflow(world))
    assert first.state == ChangeState.APPLIED
    change = submit(world, _edited(world, first, mutate, **workflow_changes))
    assert [t["code"] for t in change.required_tiers] == tiers
    compliance = change.required_tiers[0]
    assert compliance["checklist"] is (workflow_changes.get("environment") == "production")


def test_segregation_of_duties(shop):
    world = shop
    change = submit(world, new_workflow(world, definition=copy.deepcopy(TRIAGE)))
    builder = world.users["workflow_builder"]
    with pytest.raises(ReasonedRefusal, match="someone else must review"):
        services.change_request_decide(
            actor=builder, change=change, tier="compliance", approve=True, comment="me"
        )
    with pytest.raises(ReasonedRefusal, match="cannot review"):  # a viewer has no reviewing role
        services.change_request_decide(
            actor=world.users["viewer"], change=change, tier="compliance", approve=True, comment="lgtm"
        )
    with pytest.raises(ValidationError, match="comment is required"):
        services.change_request_decide(
            actor=world.users["compliance_officer"],
            change=change,
            tier="compliance",
            approve=True,
            comment=" ",
        )


def test_one_person_one_tier_and_the_manager_tier(shop):
    world = shop
    first = _activate(world, new_workflow(world))
    change = submit(world, _edited(world, first, add_payroll))
    officer = world.users["compliance_officer"]
    services.change_request_decide(
        actor=officer, change=change, tier="compliance", approve=True, comment="ok"
    )
    with pytest.raises(ReasonedRefusal, match="decided another tier"):
        services.change_request_decide(
            actor=officer, change=change, tier="security", approve=True, comment="ok"
        )
    with pytest.raises(ReasonedRefusal, match="only the author's manager"):
        services.change_request_decide(
            actor=world.second_officer, change=change, tier="manager", approve=True, comment="ok"
        )
    services.change_request_decide(
        actor=world.second_officer, change=change, tier="security", approve=True, comment="ok"
    )
    done = services.change_request_decide(
        actor=world.users["workspace_owner"],
        change=change,
        tier="manager",
        approve=True,
        comment="budget approved",
    )
    assert done.state == ChangeState.APPLIED


def test_production_checklist_must_be_complete(shop):
    world = shop
    change = submit(world, new_workflow(world, environment="production"))
    with pytest.raises(ValidationError, match="checklist"):
        services.change_request_decide(
            actor=world.users["compliance_officer"],
            change=change,
            tier="compliance",
            approve=True,
            comment="ok",
            checklist={"data_handling": True},
        )


def test_rejection_ends_the_change(shop):
    world = shop
    change = submit(world, new_workflow(world))
    rejected = services.change_request_decide(
        actor=world.users["compliance_officer"],
        change=change,
        tier="compliance",
        approve=False,
        comment="needs tests",
    )
    assert rejected.state == ChangeState.REJECTED
    with pytest.raises(ValidationError, match="already rejected"):
        services.change_request_decide(
            actor=world.second_officer, change=change, tier="compliance", approve=True, comment="overrule"
        )


def test_outdated_edit_is_a_conflict_not_an_overwrite(shop):
    world = shop
    first = new_workflow(world)
    workflow = Workflow.objects.get(pk=first.workflow_id)
    services.workflow_version_create(
        actor=world.users["workflow_builder"],
        workflow=workflow,
        definition=TRIAGE,
        base_version=first.version,
        summary="second",
    )
    with pytest.raises(ValidationError, match="Conflict: the workflow changed since you opened it"):
        services.workflow_version_create(
            actor=world.users["workspace_owner"],
            workflow=workflow,
            definition=TRIAGE,
            base_version=first.version,
            summary="stale",
        )
    first.refresh_from_db()
    assert first.state == ChangeState.SUPERSEDED


def test_bad_definition_writes_nothing(shop):
    world = shop
    before = (Workflow.objects.count(), AuditEvent.objects.count())
    bad = copy.deepcopy(TRIAGE)
    bad["steps"][0]["integration"] = "payroll-of-globex"
    with pytest.raises(ValidationError) as raised:
        new_workflow(world, definition=bad)
    assert "steps[0].integration" in raised.value.message_dict["definition"][0]
    assert (Workflow.objects.count(), AuditEvent.objects.count()) == before


def test_operators_and_viewers_cannot_edit(shop):
    world = shop
    for role in ("workflow_operator", "viewer", "compliance_officer"):
        with pytest.raises(AccessDenied):
            services.workflow_create(
                actor=world.users[role],
                workspace=world.ws,
                name="x",
                slug=f"x-{role}",
                environment="staging",
                data_region="EU",
                handles_pii=False,
                definition=TRIAGE,
                summary="x",
            )


def _third_officer(world):
    from tests.conftest import member
    from tests.factories import UserFactory

    officer = UserFactory(organization=world.org, email="officer3@acme.test", region="EU")
    member(officer, "compliance_officer", world.ws)
    return officer


def test_policies_bite_production_outside_hours_and_pii_needs_privacy(shop):
    world = shop
    change = submit(world, new_workflow(world, environment="production", handles_pii=True))
    assert [t["code"] for t in change.required_tiers] == ["compliance", "privacy", "security"]
    checklist = dict.fromkeys(("data_handling", "access_scope", "error_behaviour"), True)
    services.change_request_decide(
        actor=world.users["compliance_officer"],
        change=change,
        tier="compliance",
        approve=True,
        comment="ok",
        checklist=checklist,
    )
    services.change_request_decide(
        actor=_third_officer(world), change=change, tier="security", approve=True, comment="ok"
    )
    evening = datetime.fromisoformat("2026-06-16T18:30:00+00:00")  # 20:30 in Berlin
    with mock.patch("governance.access.policies.timezone.now", return_value=evening):
        approved = services.change_request_decide(
            actor=world.second_officer, change=change, tier="privacy", approve=True, comment="ok"
        )
        assert approved.state == ChangeState.APPROVED  # approved, but not applied outside business hours
        with pytest.raises(AccessDenied, match="production-business-hours"):
            services.change_request_apply(actor=world.second_officer, change=approved)
    applied = services.change_request_apply(actor=world.second_officer, change=approved)
    assert applied.state == ChangeState.APPLIED


def test_region_rule_keeps_us_staff_off_eu_workflows(shop):
    world = shop
    builder = world.users["workflow_builder"]
    builder.region = "US"
    builder.save(update_fields=["region"])
    with pytest.raises(AccessDenied, match="processes EU data and your region is US"):
        new_workflow(world)


@pytest.mark.django_db(transaction=True)
def test_two_officers_approving_at_once_apply_exactly_once():
    """The last tier, approved by two officers at the same moment: exactly one approval counts and
    the version is applied once; the other officer is told why."""
    from tests.conftest import build_world
    from tests.workflows.conftest import BUSINESS_HOURS, shop

    with mock.patch("governance.access.policies.timezone.now", return_value=BUSINESS_HOURS):
        world = shop.__wrapped__(build_world())
        change = submit(world, new_workflow(world))
        services.change_request_decide(
            actor=world.users["compliance_officer"],
            change=change,
            tier="compliance",
            approve=True,
            comment="ok",
        )
        racers = (world.second_officer, _third_officer(world))
        barrier, outcomes = threading.Barrier(2), []

        def approve(officer):
            try:
                barrier.wait()
                result = services.change_request_decide(
                    actor=officer, change=change, tier="security", approve=True, comment="ok"
                )
                outcomes.append(str(result.state))
            except ValidationError as error:
                outcomes.append(" ".join(error.messages))
            finally:
                connection.close()

        threads = [threading.Thread(target=approve, args=(officer,)) for officer in racers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(outcomes)[1] == ChangeState.APPLIED, outcomes
    assert "cannot decide" in sorted(outcomes)[0] or "already" in sorted(outcomes)[0], outcomes
    assert AuditEvent.objects.filter(action="workflow.change.applied").count() == 1
    assert change.approvals.filter(tier="security").count() == 1


def test_a_grant_lets_a_builder_of_another_workspace_edit_one_workflow(shop):
    """Guardian grants on a single workflow: edit this one, nothing else of that workspace."""
    from governance.access.decision import decide
    from governance.access.services import object_grant_assign
    from tests.conftest import member
    from tests.factories import UserFactory

    world = shop
    change = new_workflow(world)
    workflow = Workflow.objects.get(pk=change.workflow_id)
    outsider = UserFactory(organization=world.org, region="EU")
    member(outsider, "workflow_builder", world.sibling)
    assert not decide(outsider, "workflow.edit", workflow).allowed
    object_grant_assign(actor=world.users["workspace_owner"], user=outsider, obj=workflow, verb="change")
    assert decide(outsider, "workflow.edit", workflow).allowed
    assert "grant on this object" in decide(outsider, "workflow.edit", workflow).message
    other = new_workflow(world, slug="other")
    assert not decide(outsider, "workflow.edit", Workflow.objects.get(pk=other.workflow_id)).allowed
    edited = services.workflow_version_create(
        actor=outsider,
        workflow=workflow,
        definition=TRIAGE,
        base_version=change.version,
        summary="granted edit",
    )
    assert edited.author == outsider


def test_region_rule_covers_changes_and_versions_and_managers_see_their_reports_changes(shop):
    """A US viewer sees no EU change (404 and not listed); the author's manager sees and decides
    the manager approval without any role in the workspace."""
    from django.urls import reverse
    from rest_framework.test import APIClient

    from tests.conftest import member
    from tests.factories import UserFactory

    world = shop
    change = _activate(world, new_workflow(world))
    viewer = world.users["viewer"]
    viewer.region = "US"
    viewer.save(update_fields=["region"])
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.get(reverse("api-change-detail", args=[change.pk])).status_code == 404
    assert change.pk not in [c["id"] for c in client.get(reverse("api-change-list")).json()["results"]]

    manager = UserFactory(organization=world.org, email="boss@acme.test", region="EU")
    member(manager, "viewer", world.sibling)
    builder = world.users["workflow_builder"]
    builder.manager = manager
    builder.save(update_fields=["manager"])
    edit = submit(world, _edited(world, change, add_payroll))
    client.force_authenticate(manager)
    inbox = client.get(reverse("api-change-list"), {"inbox": "mine"}).json()
    assert [c["id"] for c in inbox["results"]] == [edit.pk], inbox
    decided = client.post(
        reverse("api-change-decide", args=[edit.pk]),
        {"tier": "manager", "approve": True, "comment": "budget ok"},
        format="json",
    )
    assert decided.status_code == 200, decided.json()


def test_versions_are_immutable_in_the_database(shop):
    from django.db import InternalError, ProgrammingError, transaction

    from workflows.changes.models import WorkflowVersion

    version = new_workflow(shop).version
    with pytest.raises((InternalError, ProgrammingError), match="immutable"), transaction.atomic():
        WorkflowVersion.objects.filter(pk=version.pk).update(
            definition={"trigger": {"type": "manual"}, "steps": []}
        )
    with (
        pytest.raises((InternalError, ProgrammingError), match="immutable"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM workflows_workflowversion WHERE id = %s", [version.pk])
