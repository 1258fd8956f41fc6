"""Completeness: writes outside the services are still captured; authentication events recorded."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from audit.ledger_verification import ledger_verify
from audit.models import AuditEvent, RowChange
from audit.sealing import ledger_seal_all
from governance.tenancy import services
from governance.tenancy.models import Membership, Workspace
from tests.conftest import PASSWORD
from tests.factories import UserFactory

_mark = {"sequence": 0}


def _row_events(table: str):
    """Row-change events of ``table`` recorded after the ``drained`` fixture ran."""
    return AuditEvent.objects.filter(
        action="db.row_changed", target_type=table, sequence__gt=_mark["sequence"]
    ).order_by("sequence")


@pytest.fixture
def drained(world):
    """The world's own setup rows are captured too; seal them first and look only past them."""
    _mark["sequence"] = ledger_seal_all().tree_size
    return world


def test_queryset_update_outside_services_lands_in_the_ledger(drained):
    world = drained
    membership = world.memberships["viewer"]
    Membership.objects.filter(pk=membership.pk).update(role_id="workspace_owner")
    ledger_seal_all()
    event = _row_events("tenancy_membership").get()
    assert event.target_id == str(membership.pk)
    assert event.data["operation"] == "UPDATE"
    assert event.data["before"]["role_id"] == "viewer"
    assert event.data["after"]["role_id"] == "workspace_owner"
    assert event.data["db_user"]
    assert ledger_verify().ok
    assert not RowChange.objects.exists()  # the queue is drained by the sealer


def test_bulk_create_and_raw_sql_are_captured_row_by_row(drained):
    world = drained
    Workspace.objects.bulk_create(
        [
            Workspace(organization=world.org, name=f"Bulk {i}", slug=f"bulk-{i}", data_region="EU")
            for i in range(3)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tenancy_workspace SET time_zone = 'Europe/Paris' WHERE slug LIKE 'bulk-%'")
        cursor.execute("DELETE FROM tenancy_workspace WHERE slug = 'bulk-0'")
    ledger_seal_all()
    operations = [event.data["operation"] for event in _row_events("tenancy_workspace")]
    assert operations.count("INSERT") == 3
    assert operations.count("UPDATE") == 3
    assert operations.count("DELETE") == 1


def test_service_writes_are_not_recorded_twice(drained):
    world = drained
    services.membership_create(
        actor=world.users["workspace_owner"],
        user=world.newcomers[world.org.pk],
        role="viewer",
        workspace=world.ws,
    )
    ledger_seal_all()
    assert AuditEvent.objects.filter(action="membership.created").exists()
    assert not _row_events("tenancy_membership").exists()


def test_password_hashes_never_reach_the_ledger(drained):
    user = UserFactory(organization=drained.org)
    user.set_password("another correct horse battery")
    user.save()
    type(user).objects.filter(pk=user.pk).update(display_name="Renamed")
    ledger_seal_all()
    events = list(_row_events("accounts_user"))
    assert events
    for event in events:
        assert "password" not in (event.data["after"] or {})
        assert "password" not in (event.data["before"] or {})
        assert b"md5$" not in bytes(event.canonical)


def test_an_update_that_changes_nothing_of_note_is_not_recorded(drained):
    user = drained.users["viewer"]
    type(user).objects.filter(pk=user.pk).update(last_login=user.date_joined)
    ledger_seal_all()
    assert not _row_events("accounts_user").exists()


def test_login_success_failure_and_logout_are_recorded(world, client):
    client.post(reverse("account_login"), {"login": "viewer@acme.test", "password": "wrong password"})
    failed = AuditEvent.objects.get(action="login.failed")
    assert failed.outcome == "failed"
    assert failed.data["reason"] == "bad_credentials"
    assert failed.target_id == str(world.users["viewer"].pk)
    assert b"wrong password" not in bytes(failed.canonical)

    client.post(reverse("account_login"), {"login": "viewer@acme.test", "password": PASSWORD})
    login = AuditEvent.objects.get(action="login.succeeded")
    assert login.actor_id == world.users["viewer"].pk
    assert len(login.data["session"]) == 16

    client.post(reverse("account_logout"))
    logout = AuditEvent.objects.get(action="auth.logout")
    assert logout.data["session"] == login.data["session"]
