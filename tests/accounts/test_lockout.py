"""Brute-force protection: lockout per account and per address through the real login pages
(allauth's and the control panel's), the same answers for known and unknown accounts, the
ledger records, and an administrator's unlock."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.lockout import LOCKOUT_MESSAGE, account_failures, identifier_digest
from audit.models import AuditEvent
from tests.conftest import PASSWORD

LIMIT = 3
OFFICE, HOME_NET, CAFE = "198.51.100.7", "203.0.113.9", "192.0.2.44"


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def _sign_in(client, login, password, *, ip=OFFICE):
    return client.post(reverse("account_login"), {"login": login, "password": password}, REMOTE_ADDR=ip)


def _admin_sign_in(client, login, password, *, ip=OFFICE):
    return client.post(reverse("admin:login"), {"username": login, "password": password}, REMOTE_ADDR=ip)


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def _error_text(response) -> str:
    """The page without its per-request CSRF token, for comparing two answers."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def test_an_account_locks_after_the_limit_and_the_right_password_is_then_refused(world, client):
    """GIVEN a builder's account WHEN the limit of wrong passwords is reached THEN the last attempt
    gets the lockout page (429), and the right password is refused too; the ledger says each."""
    for attempt in range(LIMIT):
        response = _sign_in(client, "workflow_builder@acme.test", f"wrong {attempt}")
    assert response.status_code == 429
    assert LOCKOUT_MESSAGE in response.content.decode()

    response = _sign_in(client, "workflow_builder@acme.test", PASSWORD)
    assert response.status_code == 429
    assert not _signed_in(client)

    builder = world.users["workflow_builder"]
    failed = list(AuditEvent.objects.filter(action="login.failed").order_by("id"))
    assert [event.data["reason"] for event in failed] == ["bad_credentials"] * LIMIT + ["locked_out"]
    assert {event.target_id for event in failed} == {str(builder.pk)}
    locked = AuditEvent.objects.get(action="login.locked_out")  # once, when the lockout began
    assert locked.target_id == str(builder.pk)
    assert locked.data["failures"] == LIMIT
    assert not AuditEvent.objects.filter(action="login.succeeded").exists()


def test_an_account_is_locked_whatever_address_the_attempts_come_from(world, client):
    """GIVEN wrong passwords for one account from three addresses WHEN it signs in from a fourth
    THEN it is refused: the account is counted on its own."""
    for ip in (OFFICE, HOME_NET, CAFE):
        _sign_in(client, "viewer@acme.test", "wrong", ip=ip)
    response = _sign_in(client, "viewer@acme.test", PASSWORD, ip="192.0.2.200")
    assert response.status_code == 429
    assert not _signed_in(client)


def test_an_address_is_locked_whatever_accounts_it_tries(world, client):
    """GIVEN one address trying wrong passwords on several (unknown) accounts WHEN a real account
    signs in from that address THEN it is refused, while from another address it gets in."""
    for number in range(LIMIT):
        _sign_in(client, f"nobody{number}@acme.test", "guess", ip=CAFE)
    assert _sign_in(client, "viewer@acme.test", PASSWORD, ip=CAFE).status_code == 429
    assert not _signed_in(client)
    assert _sign_in(Client(), "viewer@acme.test", PASSWORD, ip=OFFICE).status_code == 302


def test_known_and_unknown_accounts_get_the_same_answers(world):
    """GIVEN an existing and a non-existing address WHEN each gets a wrong password, then is
    locked out THEN the failure pages and the lockout pages say exactly the same."""
    known, unknown = Client(), Client()
    first_known = _sign_in(known, "viewer@acme.test", "wrong", ip=OFFICE)
    first_unknown = _sign_in(unknown, "ghost@acme.test", "wrong", ip=HOME_NET)
    assert first_known.status_code == first_unknown.status_code == 200
    assert _error_text(first_known).replace("viewer@acme.test", "X") == _error_text(first_unknown).replace(
        "ghost@acme.test", "X"
    )
    for _ in range(LIMIT):
        locked_known = _sign_in(known, "viewer@acme.test", "wrong", ip=OFFICE)
        locked_unknown = _sign_in(unknown, "ghost@acme.test", "wrong", ip=HOME_NET)
    assert locked_known.status_code == locked_unknown.status_code == 429
    assert locked_known.content == locked_unknown.content


def test_an_unknown_account_is_recorded_by_a_keyed_digest_only(world, client):
    """GIVEN a sign-in attempt for an address nobody has WHEN it fails THEN the ledger keeps the
    reason and a keyed digest of what was typed, never the typed string nor the password."""
    _sign_in(client, "Someone.Else@Example.test", "hunter2 secret")
    event = AuditEvent.objects.get(action="login.failed")
    assert event.target_id == ""
    assert event.data == {
        "reason": "bad_credentials",
        "identifier": identifier_digest("someone.else@example.test"),
        "surface": "sign_in",
    }
    raw = bytes(event.canonical).lower()
    assert b"someone.else" not in raw
    assert b"hunter2" not in raw


def test_a_failed_attempt_costs_the_same_queries_for_known_and_unknown_accounts(world):
    """GIVEN one failed attempt on a known and one on an unknown account WHEN their database work
    is counted THEN it is the same: recording the failure does not tell them apart."""
    counts = []
    for login, ip in (("viewer@acme.test", OFFICE), ("ghost@acme.test", HOME_NET)):
        with CaptureQueriesContext(connection) as queries:
            _sign_in(Client(), login, "wrong", ip=ip)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_an_inactive_account_is_told_nothing_more_and_recorded_as_inactive(world, client):
    """GIVEN a deactivated account WHEN it signs in with a wrong password THEN the page is the
    usual failure and the ledger's reason is "inactive"."""
    viewer = world.users["viewer"]
    type(viewer).objects.filter(pk=viewer.pk).update(is_active=False)
    response = _sign_in(client, "viewer@acme.test", "wrong")
    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    assert AuditEvent.objects.get(action="login.failed").data["reason"] == "inactive"


def test_a_successful_sign_in_forgets_the_accounts_failures_not_other_accounts(world, client):
    """GIVEN failures below the limit for an account and, from the same address, for others WHEN the
    account signs in THEN its own failures are forgotten; the others' from its address still count."""
    viewer = world.users["viewer"]
    _sign_in(client, "viewer@acme.test", "wrong", ip=CAFE)
    _sign_in(client, "ghost@acme.test", "wrong", ip=CAFE)
    assert account_failures(user=viewer) == 1
    assert _sign_in(client, "viewer@acme.test", PASSWORD, ip=CAFE).status_code == 302
    assert account_failures(user=viewer) == 0
    # The viewer's own failure is forgotten; the other account's failure from the address still
    # counts, so two more reach the address's limit.
    assert _sign_in(Client(), "other@acme.test", "wrong", ip=CAFE).status_code == 200
    assert _sign_in(Client(), "other@acme.test", "wrong", ip=CAFE).status_code == 429


def test_the_control_panel_login_locks_out_too(world, client):
    """GIVEN the control panel's own login WHEN an officer's password is wrong up to the limit THEN
    it shows the lockout page and refuses the right password; the ledger names the surface."""
    for _ in range(LIMIT):
        response = _admin_sign_in(client, "compliance_officer@acme.test", "wrong")
    assert response.status_code == 429
    assert _admin_sign_in(client, "compliance_officer@acme.test", PASSWORD).status_code == 429
    assert not _signed_in(client)
    surfaces = set(AuditEvent.objects.filter(action="login.failed").values_list("data__surface", flat=True))
    assert surfaces == {"control_panel"}


def test_the_control_panel_answers_unknown_and_known_accounts_alike(world):
    """GIVEN the control panel login WHEN a known and an unknown account get a wrong password THEN
    both get the same error."""
    known = _admin_sign_in(Client(), "compliance_officer@acme.test", "wrong", ip=OFFICE)
    unknown = _admin_sign_in(Client(), "ghost@acme.test", "wrong", ip=HOME_NET)
    assert _error_text(known).replace("compliance_officer@acme.test", "X") == _error_text(unknown).replace(
        "ghost@acme.test", "X"
    )


def test_right_credentials_without_a_control_panel_role_are_recorded(world, client):
    """GIVEN a builder at the control panel login WHEN the password is right THEN the refusal is a
    ``login.failed`` with its reason (and not counted towards a lockout)."""
    _admin_sign_in(client, "workflow_builder@acme.test", PASSWORD)
    event = AuditEvent.objects.get(action="login.failed")
    assert event.data["reason"] == "no_control_panel_role"
    assert account_failures(user=world.users["workflow_builder"]) == 0


def _lock(login, ip=OFFICE):
    for _ in range(LIMIT):
        _sign_in(Client(), login, "wrong", ip=ip)


def test_an_administrator_unlocks_an_account_and_it_is_recorded(world):
    """GIVEN a locked account WHEN the platform administrator unlocks it in the control panel THEN
    it signs in at once, and ``login.unlocked`` names who did it."""
    _lock("viewer@acme.test")
    admin = Client()
    admin.force_login(world.users["platform_admin"])
    changelist = admin.get(reverse("admin:accounts_user_changelist")).content.decode()
    unlock_url = reverse("admin:accounts_user_unlock", args=[world.users["viewer"].pk])
    assert unlock_url in changelist
    assert admin.get(unlock_url).status_code == 200
    response = admin.post(unlock_url, {"address": ""})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="login.unlocked")
    assert event.actor_id == world.users["platform_admin"].pk
    assert event.target_id == str(world.users["viewer"].pk)
    assert event.data["attempts_cleared"] == 1
    assert _sign_in(Client(), "viewer@acme.test", PASSWORD, ip=HOME_NET).status_code == 302


def test_unlocking_an_address_lets_its_other_accounts_in(world):
    """GIVEN an address locked by failures on unknown accounts WHEN the administrator unlocks a
    user together with that address THEN the user signs in from it again."""
    for number in range(LIMIT):
        _sign_in(Client(), f"nobody{number}@acme.test", "guess", ip=CAFE)
    admin = Client()
    admin.force_login(world.users["platform_admin"])
    url = reverse("admin:accounts_user_unlock", args=[world.users["viewer"].pk])
    assert admin.post(url, {"address": "not an address"}).status_code == 200  # a field error
    assert admin.post(url, {"address": CAFE}).status_code == 302
    assert _sign_in(Client(), "viewer@acme.test", PASSWORD, ip=CAFE).status_code == 302


@pytest.mark.parametrize("role", ["workspace_owner", "compliance_officer", "auditor"])
def test_only_user_managers_unlock(world, role):
    """GIVEN a locked account WHEN someone without user.manage opens or posts the unlock page THEN
    nothing is cleared and nothing recorded."""
    _lock("viewer@acme.test")
    other = Client()
    other.force_login(world.users[role])
    url = reverse("admin:accounts_user_unlock", args=[world.users["viewer"].pk])
    assert other.post(url, {"address": ""}).status_code in (403, 404)
    assert account_failures(user=world.users["viewer"]) == LIMIT
    assert not AuditEvent.objects.filter(action="login.unlocked").exists()
