"""Membership services: the happy paths with their ledger events, and every bad input refused
with a field-level error and nothing written."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from audit.models import AuditEvent
from governance.access.decision import AccessDenied, decide
from governance.core.context import ActorContext, bind_context
from governance.tenancy import services
from governance.tenancy.models import Membership
from tests.conftest import build_world, member
from tests.factories import UserFactory


def _counts():
    return Membership.objects.count(), AuditEvent.objects.count()


def test_owner_adds_changes_and_removes_a_member_with_ledger_events(world):
    owner = world.users["workspace_owner"]
    newcomer = world.newcomers[world.org.pk]

    membership = services.membership_create(
        actor=owner, user=newcomer, role="workflow_builder", workspace=world.ws
    )
    assert decide(newcomer, "workflow.edit", world.ws).allowed
    created = AuditEvent.objects.get(action="membership.created", target_id=str(membership.pk))
    assert created.actor_id == owner.pk
    assert created.workspace_id == world.ws.pk
    assert created.data == {"role": "workflow_builder", "user": newcomer.email, "workspace": "ops-eu"}

    services.membership_change_role(actor=owner, membership=membership, role="viewer")
    changed = AuditEvent.objects.get(action="membership.role_changed")
    assert changed.data["diff"] == {"role": {"before": "workflow_builder", "after": "viewer"}}
    assert not decide(newcomer, "workflow.edit", world.ws).allowed

    services.membership_remove(actor=owner, membership=membership)
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.filter(action="membership.removed", target_id=str(membership.pk)).count() == 1
    assert not decide(newcomer, "workspace.view", world.ws).allowed


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("unknown role", "role", "Unknown role 'superhero'"),
        ("duplicate", "user", "already holds the role"),
        ("user of another organisation", "user", "another organisation"),
        ("org role with a workspace", "workspace", "organisation-wide"),
        ("workspace role without a workspace", "workspace", "Choose a workspace"),
    ],
)
def test_bad_membership_input_is_refused_at_the_field_and_writes_nothing(world, case, field, message):
    admin = world.users["platform_admin"]
    kwargs = {
        "unknown role": {"user": world.newcomers[world.org.pk], "role": "superhero", "workspace": world.ws},
        "duplicate": {"user": world.users["viewer"], "role": "auditor", "workspace": world.ws},
        "user of another organisation": {"user": world.foreign_user, "role": "viewer", "workspace": world.ws},
        "org role with a workspace": {
            "user": world.newcomers[world.org.pk],
            "role": "platform_admin",
            "workspace": world.ws,
        },
        "workspace role without a workspace": {"user": world.newcomers[world.org.pk], "role": "viewer"},
    }[case]
    before = _counts()
    with pytest.raises(ValidationError) as raised:
        services.membership_create(actor=admin, **kwargs)
    assert field in raised.value.message_dict
    assert message in " ".join(raised.value.message_dict[field])
    assert _counts() == before


def test_membership_in_a_foreign_workspace_is_denied_and_writes_nothing(world):
    before = _counts()
    with pytest.raises(AccessDenied, match="another organisation"):
        services.membership_create(
            actor=world.users["workspace_owner"],
            user=world.newcomers[world.org.pk],
            role="viewer",
            workspace=world.foreign,
        )
    with pytest.raises(AccessDenied, match="not a member"):
        services.membership_create(
            actor=world.users["workspace_owner"],
            user=world.newcomers[world.org.pk],
            role="viewer",
            workspace=world.sibling,
        )
    assert _counts() == before


@pytest.mark.parametrize("operation", ["remove", "demote"])
def test_last_owner_cannot_leave(world, operation):
    owner_membership = world.memberships["workspace_owner"]
    before = _counts()
    admin = world.users["platform_admin"]
    if operation == "remove":
        attempt = lambda: services.membership_remove(actor=admin, membership=owner_membership)  # noqa: E731
    else:
        attempt = lambda: services.membership_change_role(  # noqa: E731
            actor=admin, membership=owner_membership, role="viewer"
        )
    with pytest.raises(ValidationError, match="last owner"):
        attempt()
    assert _counts() == before
    # With a second owner the first may go.
    member(world.newcomers[world.org.pk], "workspace_owner", world.ws)
    services.membership_remove(actor=world.users["platform_admin"], membership=owner_membership)


def test_last_platform_admin_cannot_be_removed(world):
    with pytest.raises(ValidationError, match="last platform administrator"):
        services.membership_remove(
            actor=world.users["platform_admin"], membership=world.memberships["platform_admin"]
        )


def test_service_rechecks_permission_inside_its_transaction(world):
    """Within one request grants are cached; a service still reloads them before it writes."""
    owner = world.users["workspace_owner"]
    with bind_context(ActorContext()):
        assert decide(owner, "membership.manage", world.ws).allowed  # now cached for this request
        member(world.newcomers[world.org.pk], "workspace_owner", world.ws)
        Membership.objects.filter(pk=world.memberships["workspace_owner"].pk).delete()
        assert decide(owner, "membership.manage", world.ws).allowed  # the cache still says yes
        with pytest.raises(AccessDenied):
            services.membership_create(
                actor=owner, user=UserFactory(organization=world.org), role="viewer", workspace=world.ws
            )


def test_audit_failure_rolls_the_change_back(world, monkeypatch):
    """Fail closed: when the ledger write fails, the membership is not created either."""
    from audit import services as audit_services

    def broken(**kwargs):
        raise audit_services.AuditError("ledger unavailable")

    monkeypatch.setattr(services, "audit_event_record", broken)
    before = _counts()
    with pytest.raises(audit_services.AuditError):
        services.membership_create(
            actor=world.users["workspace_owner"],
            user=world.newcomers[world.org.pk],
            role="viewer",
            workspace=world.ws,
        )
    assert _counts() == before


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_removals_cannot_remove_both_owners():
    """Two owners removing each other at once: the workspace lock lets exactly one succeed."""
    world = build_world()
    second = member(world.newcomers[world.org.pk], "workspace_owner", world.ws)
    first = world.memberships["workspace_owner"]
    barrier = threading.Barrier(2)
    outcomes = []

    def remove(actor, membership):
        try:
            barrier.wait()
            services.membership_remove(actor=actor, membership=membership)
            outcomes.append("removed")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=remove, args=(world.users["platform_admin"], first)),
        threading.Thread(target=remove, args=(world.users["platform_admin"], second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "removed"]
    assert Membership.objects.filter(workspace=world.ws, role_id="workspace_owner").count() == 1


def test_workspace_update_records_the_diff_and_validates(world):
    owner = world.users["workspace_owner"]
    services.workspace_update(actor=owner, workspace=world.ws, time_zone="Europe/Paris")
    event = AuditEvent.objects.get(action="workspace.updated")
    assert event.data["diff"] == {"time_zone": {"before": "Europe/Berlin", "after": "Europe/Paris"}}
    with pytest.raises(ValidationError) as raised:
        services.workspace_update(actor=owner, workspace=world.ws, time_zone="Mars/Olympus")
    assert "time_zone" in raised.value.message_dict
    with pytest.raises(ValidationError) as raised, transaction.atomic():
        services.workspace_update(actor=owner, workspace=world.ws, organization=world.foreign_org)
    assert "organization" in raised.value.message_dict
    world.ws.refresh_from_db()
    assert world.ws.time_zone == "Europe/Paris"


@pytest.mark.parametrize("role", ["compliance_officer", "auditor"])
def test_owners_cannot_appoint_their_own_reviewers_or_auditors(world, role):
    """Segregation of duties: only organisation-wide administrators give oversight roles."""
    owner, admin = world.users["workspace_owner"], world.users["platform_admin"]
    with pytest.raises(AccessDenied):
        services.membership_create(
            actor=owner, user=world.newcomers[world.org.pk], role=role, workspace=world.ws
        )
    with pytest.raises(AccessDenied):
        services.membership_change_role(actor=owner, membership=world.memberships["viewer"], role=role)
    with pytest.raises(AccessDenied):  # nor remove the workspace's officer or auditor
        services.membership_remove(actor=owner, membership=world.memberships[role])
    services.membership_create(actor=admin, user=world.newcomers[world.org.pk], role=role, workspace=world.ws)
