"""API tokens do not outlive the password they were issued under: a reset (by e-mailed key), a
change (portal or control panel) or a password set by an administrator revokes every API token
of the person, recorded as ``api_token.revoked``. People see and revoke their own tokens."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework.test import APIClient

from accounts.services import api_token_create, user_password_set
from audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "an entirely new passphrase 42"


def _authenticates(token: str) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/workspaces/").status_code == 200


def _revoked(reason: str):
    return AuditEvent.objects.filter(action="api_token.revoked", data__reason=reason)


@pytest.fixture
def person(world):
    user = world.users["workflow_builder"]
    user.set_password(PASSWORD)
    user.save()
    return user


def test_a_password_reset_revokes_the_api_tokens(person):
    """GIVEN a builder with a working API token WHEN the password is reset through the e-mailed
    link THEN the token no longer authenticates, and the ledger records the revocation."""
    token = api_token_create(actor=person, user=person)
    assert _authenticates(token)
    browser = Client()
    browser.post(reverse("account_reset_password"), {"email": person.email})
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+/)", mail.outbox[-1].body)
    assert link is not None, mail.outbox[-1].body
    form = browser.get(link.group(1), follow=True)
    done = browser.post(form.redirect_chain[-1][0], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302, done.content[:500]
    person.refresh_from_db()
    assert person.check_password(NEW_PASSWORD)
    assert not _authenticates(token)
    assert not AuthToken.objects.filter(user=person).exists()
    event = _revoked("password_reset").get()
    assert event.data["revoked"] == 1
    assert event.target_id == str(person.pk)


def test_a_password_change_in_the_portal_revokes_the_api_tokens(person):
    token = api_token_create(actor=person, user=person)
    browser = Client()
    browser.force_login(person)
    response = browser.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content[:500]
    assert not _authenticates(token)
    assert _revoked("password_changed").count() == 1


def test_a_password_change_in_the_control_panel_revokes_the_api_tokens(world):
    officer = world.users["compliance_officer"]
    officer.set_password(PASSWORD)
    officer.save()
    token = api_token_create(actor=officer, user=officer)
    browser = Client()
    browser.force_login(officer)
    response = browser.post(
        reverse("admin:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content[:500]
    assert not _authenticates(token)
    assert _revoked("password_changed").get().actor_id == officer.pk


def test_a_password_set_by_the_system_revokes_the_api_tokens(person):
    token = api_token_create(actor=None, user=person)
    user_password_set(actor=None, user=person, password=NEW_PASSWORD)
    assert not _authenticates(token)
    assert _revoked("password_set").get().data["revoked"] == 1


def test_a_failed_password_change_keeps_the_tokens(person):
    """GIVEN a wrong current password WHEN the change is refused THEN the token still works."""
    token = api_token_create(actor=person, user=person)
    browser = Client()
    browser.force_login(person)
    browser.post(
        reverse("account_change_password"),
        {"oldpassword": "wrong", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert _authenticates(token)
    assert not AuditEvent.objects.filter(action="api_token.revoked").exists()


def test_people_list_and_revoke_their_own_tokens_only(world, person):
    """GIVEN two tokens of a builder and one of a viewer WHEN the builder opens their token page and
    revokes one THEN the page lists their two only; the revoked one stops working; posting the
    viewer's token key revokes nothing."""
    mine, other = api_token_create(actor=person, user=person), api_token_create(actor=person, user=person)
    viewer = world.users["viewer"]
    theirs = api_token_create(actor=viewer, user=viewer)
    key = CONSTANTS.TOKEN_KEY_LENGTH  # the public part knox stores and the page shows
    browser = Client()
    browser.force_login(person)
    page = browser.get(reverse("account-api-tokens")).content.decode()
    assert mine[:key] in page
    assert other[:key] in page
    assert theirs[:key] not in page
    assert mine not in page
    assert browser.post(reverse("account-api-tokens"), {"token": mine[:key]}).status_code == 302
    assert not _authenticates(mine)
    assert _authenticates(other)
    browser.post(reverse("account-api-tokens"), {"token": theirs[:key]})
    assert _authenticates(theirs)
    assert _revoked("by_owner").count() == 1
