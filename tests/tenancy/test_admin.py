"""The control panel's membership and workspace pages: writes go through services, bad input
comes back as form errors with nothing written, list pages keep a flat query count."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from governance.tenancy.models import Membership, Workspace
from tests.conftest import member
from tests.factories import UserFactory, WorkspaceFactory, make_events


def _counts():
    return Membership.objects.count(), AuditEvent.objects.count()


def test_owner_adds_a_member_through_the_form(world, client):
    client.force_login(world.users["workspace_owner"])
    newcomer = world.newcomers[world.org.pk]
    response = client.post(
        reverse("admin:tenancy_membership_add"),
        {"user": newcomer.pk, "workspace": world.ws.pk, "role": "workflow_builder"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    membership = Membership.objects.get(user=newcomer)
    assert membership.role_id == "workflow_builder"
    event = AuditEvent.objects.get(action="membership.created", target_id=str(membership.pk))
    assert event.actor_id == world.users["workspace_owner"].pk
    assert event.request_id  # the request's id travels into the ledger


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("duplicate", "already holds the role"),
        ("sibling workspace", "Select a valid choice"),
        ("foreign workspace", "Select a valid choice"),
        ("missing workspace", "Select a valid choice"),
        ("foreign user", "Select a valid choice"),
        ("unknown role", "Select a valid choice"),
        ("org role in a workspace", "organisation-wide"),
    ],
)
def test_bad_membership_form_input_shows_an_error_and_writes_nothing(world, client, case, message):
    client.force_login(world.users["workspace_owner"])
    data = {"user": world.newcomers[world.org.pk].pk, "workspace": world.ws.pk, "role": "viewer"}
    data.update(
        {
            "duplicate": {"user": world.users["viewer"].pk},
            "sibling workspace": {"workspace": world.sibling.pk},
            "foreign workspace": {"workspace": world.foreign.pk},
            "missing workspace": {"workspace": 999_999},
            "foreign user": {"user": world.foreign_user.pk},
            "unknown role": {"role": "superhero"},
            "org role in a workspace": {"role": "platform_admin"},
        }[case]
    )
    before = _counts()
    response = client.post(reverse("admin:tenancy_membership_add"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert _counts() == before


def test_removing_the_last_owner_in_the_admin_is_refused_with_a_message(world, client):
    client.force_login(world.users["platform_admin"])
    owner_membership = world.memberships["workspace_owner"]
    url = reverse("admin:tenancy_membership_delete", args=[owner_membership.pk])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert "last owner" in response.content.decode()
    assert Membership.objects.filter(pk=owner_membership.pk).exists()


def test_workspace_change_in_the_admin_records_the_diff(world, client):
    client.force_login(world.users["workspace_owner"])
    url = reverse("admin:tenancy_workspace_change", args=[world.ws.pk])
    response = client.post(
        url,
        {
            "name": "Ops Europe",
            "data_region": "EU",
            "time_zone": "Europe/Berlin",
            "business_hours_start": "08:00",
            "business_hours_end": "17:00",
            "business_days": "12345",
        },
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="workspace.updated")
    assert event.data["diff"]["name"] == {"before": "Ops EU", "after": "Ops Europe"}


def test_bad_workspace_input_is_a_form_error(world, client):
    client.force_login(world.users["platform_admin"])
    before = Workspace.objects.count()
    response = client.post(
        reverse("admin:tenancy_workspace_add"),
        {
            "name": "Bad",
            "slug": "ops-eu",
            "data_region": "MOON",
            "time_zone": "Nowhere/Land",
            "business_hours_start": "18:00",
            "business_hours_end": "09:00",
            "business_days": "19",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    for message in (
        "uses this slug",
        "not one of the available choices",
        "not a known time zone",
        "Business days are ISO weekday digits",
    ):
        assert message in body
    assert Workspace.objects.count() == before


def test_bulk_delete_action_is_not_offered(world, client):
    client.force_login(world.users["platform_admin"])
    response = client.get(reverse("admin:tenancy_membership_changelist"))
    assert "delete_selected" not in response.content.decode()


def _fill(world, n: int) -> None:
    for _ in range(n):
        member(UserFactory(organization=world.org), "viewer", world.ws)


@pytest.mark.parametrize(
    ("url_name", "role"),
    [
        ("admin:tenancy_membership_changelist", "workspace_owner"),
        ("admin:tenancy_membership_changelist", "platform_admin"),
        ("admin:tenancy_workspace_changelist", "platform_admin"),
        ("admin:accounts_user_changelist", "platform_admin"),
        ("admin:audit_auditevent_changelist", "auditor"),
    ],
)
def test_changelist_query_count_is_flat(world, client, url_name, role):
    """The same number of queries at 20 and at 100 rows a page (no query per row); 100 is the
    admin's page size, so the second page view is a full page."""
    client.force_login(world.users[role])
    client.get(reverse(url_name))  # warm per-process caches (content types) before counting
    counts = []
    for rows in (20, 100):
        _fill(world, rows)
        for _ in range(rows):
            WorkspaceFactory(organization=world.org)
        make_events(rows, workspace=world.ws)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse(url_name))
        assert response.status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1], counts
