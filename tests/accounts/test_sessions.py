"""Session control: every session recorded, timeouts, the concurrency limit, ending sessions
(one's own, or all of a user's by an administrator, with their API tokens)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from accounts.models import UserSession
from accounts.services import user_set_active
from accounts.sessions import session_ref_of, user_sessions_end_all
from audit.models import AuditEvent
from governance.access.decision import AccessDenied

HOME = "/"


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _row(client) -> UserSession:
    return UserSession.objects.get(session_ref=session_ref_of(client.session.session_key))


def test_a_login_is_recorded_and_a_logout_ends_it(world):
    viewer = world.users["viewer"]
    client = _signed_in(viewer)
    row = _row(client)
    assert row.is_live
    assert row.user == viewer
    assert client.get(HOME).status_code == 200
    client.post(reverse("account_logout"))
    row.refresh_from_db()
    assert row.end_reason == "logout"
    events = list(
        AuditEvent.objects.filter(action__startswith="session.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert events == ["session.started", "session.ended"]
    assert row.session_ref not in str(client.session.session_key)


def test_idle_and_absolute_timeouts_sign_out_with_the_reason(world, settings):
    viewer = world.users["viewer"]
    idle = _signed_in(viewer)
    UserSession.objects.filter(pk=_row(idle).pk).update(last_seen_at=timezone.now() - timedelta(hours=1))
    response = idle.get(HOME)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]
    assert UserSession.objects.filter(end_reason="idle").count() == 1
    old = _signed_in(viewer)
    UserSession.objects.filter(pk=_row(old).pk).update(created_at=timezone.now() - timedelta(days=1))
    assert old.get(HOME).status_code == 302
    assert UserSession.objects.filter(end_reason="absolute").count() == 1
    assert old.get(HOME).status_code == 302  # stays signed out


def test_the_oldest_session_gives_way_past_the_limit(world, settings):
    settings.SESSION_CONCURRENCY_LIMIT = 2
    viewer = world.users["viewer"]
    first = _signed_in(viewer)
    first_ref = _row(first).session_ref
    second, third = _signed_in(viewer), _signed_in(viewer)
    assert first.get(HOME).status_code == 302  # ended by the limit
    assert second.get(HOME).status_code == 200
    assert third.get(HOME).status_code == 200
    assert UserSession.objects.get(end_reason="limit").session_ref == first_ref


def test_refuse_policy_refuses_the_new_session(world, settings):
    settings.SESSION_CONCURRENCY_LIMIT = 1
    settings.SESSION_LIMIT_POLICY = "refuse"
    viewer = world.users["viewer"]
    first, second = _signed_in(viewer), _signed_in(viewer)
    assert first.get(HOME).status_code == 200
    assert second.get(HOME).status_code == 302
    assert UserSession.objects.get(end_reason="refused")


def test_people_see_and_end_their_own_sessions_only(world):
    viewer = world.users["viewer"]
    laptop, phone = _signed_in(viewer), _signed_in(viewer)
    page = laptop.get(reverse("account-sessions")).content.decode()
    assert "this session" in page
    assert "End this session" in page
    assert laptop.post(reverse("account-sessions"), {"session": _row(phone).pk}).status_code == 302
    assert phone.get(HOME).status_code == 302
    stranger = _signed_in(world.users["workflow_builder"])
    assert stranger.post(reverse("account-sessions"), {"session": _row(laptop).pk}).status_code == 404
    assert laptop.get(HOME).status_code == 200


def test_force_logout_ends_every_session_and_revokes_api_tokens(world):
    viewer = world.users["viewer"]
    browser = _signed_in(viewer)
    AuthToken.objects.create(user=viewer)
    admin_client = _signed_in(world.users["platform_admin"])
    url = reverse("admin:accounts_user_force_logout", args=[viewer.pk])
    assert "Sign out everywhere" in admin_client.get(url).content.decode()
    assert admin_client.post(url).status_code == 302
    assert browser.get(HOME).status_code == 302
    assert not AuthToken.objects.filter(user=viewer).exists()
    event = AuditEvent.objects.get(action="session.forced_end")
    assert event.data["api_tokens_revoked"] == 1
    assert event.actor_id == world.users["platform_admin"].pk


@pytest.mark.parametrize("role", ["workspace_owner", "compliance_officer", "auditor", "viewer"])
def test_only_user_managers_force_logout(world, role):
    with pytest.raises(AccessDenied):
        user_sessions_end_all(actor=world.users[role], user=world.users["workflow_builder"])


def test_deactivation_cuts_the_user_off_at_once(world):
    viewer = world.users["viewer"]
    browser = _signed_in(viewer)
    AuthToken.objects.create(user=viewer)
    user_set_active(actor=world.users["platform_admin"], user=viewer, active=False)
    assert browser.get(HOME).status_code == 302
    assert UserSession.objects.get(user=viewer).end_reason == "deactivated"
    assert not AuthToken.objects.filter(user=viewer).exists()


def test_an_ended_session_gets_401_on_the_api(world):
    viewer = world.users["viewer"]
    client = _signed_in(viewer)
    UserSession.objects.filter(pk=_row(client).pk).update(ended_at=timezone.now(), end_reason="forced")
    response = client.get("/api/v1/workspaces/")
    assert response.status_code == 401
    assert "session has ended" in response.json()["detail"]
