"""Policy changes are governed (second officer), enforced by the decision point, and explained."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent
from governance.access import services
from governance.access.decision import decide
from governance.access.models import Policy, PolicyChange
from tests.conftest import member
from tests.factories import UserFactory

SAME_REGION_ONLY = """// Workspace settings are changed only by people of the workspace's region.
@id("workspace-region")
@message("Denied by policy workspace-region: this workspace keeps {resource_data_region} data and your region is {principal_region}.")
forbid(principal, action == Portal::Action::"workspace.manage", resource is Portal::Workspace)
unless { principal has region && principal.region == resource.data_region };
"""


@pytest.fixture
def officers(world):
    first = world.users["compliance_officer"]
    second = UserFactory(organization=world.org, email="officer2@acme.test")
    member(second, "compliance_officer", world.sibling)
    return first, second


def test_a_new_rule_takes_effect_only_after_a_second_officer_approves(
    world, officers, django_capture_on_commit_callbacks
):
    first, second = officers
    owner = world.users["workspace_owner"]
    owner.region = "US"
    owner.save(update_fields=["region"])
    with django_capture_on_commit_callbacks(execute=True):
        change = services.policy_change_propose(
            actor=first,
            organization=world.org,
            name="workspace-region",
            text=SAME_REGION_ONLY,
            reason="EU data stays with EU staff",
        )
    assert decide(owner, "workspace.manage", world.ws).allowed  # proposed, not in force
    assert [m.to for m in mail.outbox] == [["officer2@acme.test"]]

    with pytest.raises(ValidationError, match="another compliance officer"):
        services.policy_change_approve(actor=first, change=change, comment="looks good")
    policy = services.policy_change_approve(actor=second, change=change, comment="agreed")
    assert policy.version == 1

    decision = decide(owner, "workspace.manage", world.ws)
    assert not decision.allowed
    assert decision.policies == ("workspace-region",)
    assert decision.message == ("Denied by policy workspace-region: this workspace keeps EU data and your "
                                "region is US.")  # fmt: skip
    actions = list(AuditEvent.objects.filter(action__startswith="policy.").values_list("action", flat=True))
    assert sorted(actions) == ["policy.change_approved", "policy.change_proposed"]
    approved = AuditEvent.objects.get(action="policy.change_approved")
    assert '+@id("workspace-region")' in approved.data["text_diff"]
    assert approved.data["proposed_by"] == first.email


def test_the_refusal_reaches_the_api_user_and_the_ledger(world, officers):
    first, second = officers
    change = services.policy_change_propose(
        actor=first,
        organization=world.org,
        name="workspace-region",
        text=SAME_REGION_ONLY,
        reason="residency",
    )
    services.policy_change_approve(actor=second, change=change, comment="ok")
    owner = world.users["workspace_owner"]
    owner.region = ""  # no region: the rule's `principal has region` fails, so it forbids
    owner.save(update_fields=["region"])
    client = APIClient()
    client.force_authenticate(owner)
    response = client.get(reverse("workspace-detail", args=[world.ws.pk]))
    assert response.status_code == 200  # viewing is not affected
    from governance.tenancy import services as tenancy_services

    with pytest.raises(Exception, match="Denied by policy workspace-region"):
        tenancy_services.workspace_update(actor=world.users["workspace_owner"], workspace=world.ws, name="X")


def test_admin_refusal_by_policy_is_recorded_with_the_policy_id(world, officers, client):
    first, second = officers
    change = services.policy_change_propose(
        actor=first,
        organization=world.org,
        name="workspace-region",
        text=SAME_REGION_ONLY,
        reason="residency",
    )
    services.policy_change_approve(actor=second, change=change, comment="ok")
    owner = world.users["workspace_owner"]
    owner.region = "US"
    owner.save(update_fields=["region"])
    client.force_login(owner)
    url = reverse("admin:tenancy_workspace_change", args=[world.ws.pk])
    response = client.post(
        url,
        {
            "name": "Renamed",
            "data_region": "EU",
            "time_zone": "Europe/Berlin",
            "business_hours_start": "09:00",
            "business_hours_end": "18:00",
            "business_days": "12345",
        },
    )
    assert response.status_code == 403
    event = AuditEvent.objects.get(action="access.denied")
    assert event.data["policies"] == ["workspace-region"]
    assert "Denied by policy workspace-region" in event.data["reasons"][0]


def test_bad_policy_text_is_refused_and_nothing_is_saved(world, officers):
    first, _ = officers
    before = (PolicyChange.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ValidationError) as raised:
        services.policy_change_propose(
            actor=first,
            organization=world.org,
            name="broken",
            text='@id("broken")\nforbid(principal, action, resource)\nwhen { resource.nope };',
            reason="test",
        )
    assert raised.value.message_dict["text"][0].startswith("line 3:")
    assert (PolicyChange.objects.count(), AuditEvent.objects.count()) == before


def test_rejection_and_double_decisions(world, officers):
    first, second = officers
    change = services.policy_change_propose(
        actor=first,
        organization=world.org,
        name="workspace-region",
        text=SAME_REGION_ONLY,
        reason="residency",
    )
    services.policy_change_reject(actor=second, change=change, comment="too strict for now")
    with pytest.raises(ValidationError, match="already rejected"):
        services.policy_change_approve(actor=second, change=change, comment="changed my mind")
    assert not Policy.objects.filter(name="workspace-region").exists()


def test_only_compliance_officers_govern_policies(world):
    from governance.access.decision import AccessDenied

    with pytest.raises(AccessDenied):
        services.policy_change_propose(
            actor=world.users["workspace_owner"],
            organization=world.org,
            name="x",
            text=SAME_REGION_ONLY,
            reason="mine",
        )


def test_switching_a_shipped_rule_off_for_one_workspace(world, officers):
    first, second = officers
    shipped = Policy.objects.get(name="production-business-hours", organization__isnull=True)
    change = services.policy_change_propose(
        actor=first,
        organization=world.org,
        name=shipped.name,
        policy=shipped,
        text=shipped.text,
        disabled_workspaces=[world.ws],
        reason="24/7 operations team",
    )
    services.policy_change_approve(actor=second, change=change, comment="ok")
    shipped.refresh_from_db()
    assert list(shipped.disabled_workspaces.all()) == [world.ws]
    assert shipped.version == 2
    event = AuditEvent.objects.get(action="policy.change_approved")
    assert event.data["diff"]["disabled_workspaces"] == {"before": [], "after": ["ops-eu"]}


def test_on_call_override_is_reasoned_limited_notified_and_recorded(
    world, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    operator = world.users["workflow_operator"]
    with pytest.raises(ValidationError, match="at least 10"):
        services.oncall_override_activate(
            actor=operator, workspace=world.ws, reason="x", duration=timedelta(hours=1)
        )
    with pytest.raises(ValidationError, match="12 hours"):
        services.oncall_override_activate(
            actor=operator, workspace=world.ws, reason="database failover", duration=timedelta(hours=13)
        )
    with django_capture_on_commit_callbacks(execute=True):
        override = services.oncall_override_activate(
            actor=operator, workspace=world.ws, reason="database failover", duration=timedelta(hours=2)
        )
    assert override.is_active()
    assert mail.outbox[-1].to == ["compliance_officer@acme.test"]
    assert AuditEvent.objects.get(action="oncall.activated").data["reason"] == "database failover"
    services.oncall_override_end(actor=world.users["compliance_officer"], override=override)
    override.refresh_from_db()
    assert not override.is_active()
    assert AuditEvent.objects.filter(action="oncall.ended").count() == 1
    from governance.access.decision import AccessDenied

    with pytest.raises(AccessDenied):
        services.oncall_override_activate(
            actor=world.users["viewer"],
            workspace=world.ws,
            reason="want to help",
            duration=timedelta(hours=1),
        )


def test_decide_many_agrees_with_decide_one_by_one(world, officers):
    """Batch evaluation for lists gives exactly the single-object answers."""
    from governance.access.decision import decide_many
    from governance.tenancy.models import Workspace

    first, second = officers
    change = services.policy_change_propose(
        actor=first,
        organization=world.org,
        name="workspace-region",
        text=SAME_REGION_ONLY,
        reason="residency",
    )
    services.policy_change_approve(actor=second, change=change, comment="ok")
    admin = world.users["platform_admin"]
    admin.region = "US"
    admin.save(update_fields=["region"])
    workspaces = list(Workspace.objects.all())
    many = decide_many(admin, "workspace.manage", workspaces)
    one_by_one = [decide(admin, "workspace.manage", workspace) for workspace in workspaces]
    assert [d.allowed for d in many] == [d.allowed for d in one_by_one]
    assert [d.policies for d in many] == [d.policies for d in one_by_one]
    assert [d.reasons for d in many] == [d.reasons for d in one_by_one]
    assert any(d.policies == ("workspace-region",) for d in many)  # the EU workspace
    assert any(d.allowed for d in many)  # the US one


def test_an_organisation_cannot_edit_a_shipped_policy_for_everyone(world, officers):
    first, second = officers
    shipped = Policy.objects.get(name="region-data-residency", organization__isnull=True)
    with pytest.raises(ValidationError, match="same for every organisation"):
        services.policy_change_propose(
            actor=first,
            organization=world.org,
            name=shipped.name,
            policy=shipped,
            text='@id("x")\nforbid(principal, action, resource);',
            reason="lock out",
        )
    with pytest.raises(ValidationError, match="same for every organisation"):
        services.policy_change_propose(
            actor=first,
            organization=world.org,
            name=shipped.name,
            policy=shipped,
            text=shipped.text,
            enabled=False,
            reason="off for all",
        )
    # Another organisation's switches survive this organisation's change.
    shipped.disabled_workspaces.add(world.foreign)
    change = services.policy_change_propose(
        actor=first,
        organization=world.org,
        name=shipped.name,
        policy=shipped,
        text=shipped.text,
        disabled_workspaces=[world.ws],
        reason="EU only",
    )
    services.policy_change_approve(actor=second, change=change, comment="ok")
    assert set(shipped.disabled_workspaces.all()) == {world.ws, world.foreign}
    event = AuditEvent.objects.get(action="policy.change_approved")
    assert event.data["diff"]["disabled_workspaces"] == {"before": [], "after": ["ops-eu"]}
