"""SCIM tokens: created by platform administrators only and shown once, stored as a digest and a
prefix, expiring and revocable; and the attack: a SCIM call with a bad token is refused, recorded
(prefix only) and creates no session."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ScimToken, User, UserSession
from accounts.scim.tokens import scim_token_create, scim_token_revoke
from audit.models import AuditEvent
from governance.access.decision import AccessDenied
from tests.accounts.scim_world import ScimClient, new_user, scim_error, scim_token_for

pytestmark = pytest.mark.django_db


def test_only_the_digest_and_a_prefix_are_stored(world):
    """GIVEN a new token WHEN it is stored THEN the row holds its SHA-256 digest and public
    prefix, never the token; the ledger event names the prefix only."""
    issued = scim_token_create(actor=world.users["platform_admin"], organization=world.org, name="Entra ID")
    row = ScimToken.objects.get(pk=issued.token.pk)
    secret = issued.plaintext.split("_", 2)[2]
    assert issued.plaintext.startswith(f"gpscim_{row.prefix}_")
    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ScimToken.objects.filter(pk=row.pk).values().get())
    event = AuditEvent.objects.get(action="scim.token_created")
    assert event.data["prefix"] == row.prefix
    assert secret not in event.canonical.decode()
    assert row.expires_at > timezone.now() + timedelta(days=364)


@pytest.mark.parametrize("role", ["workspace_owner", "compliance_officer", "auditor", "viewer"])
def test_only_organisation_managers_create_tokens(world, role):
    with pytest.raises(AccessDenied):
        scim_token_create(actor=world.users[role], organization=world.org, name="IdP")
    with pytest.raises(AccessDenied):
        scim_token_create(actor=world.users["platform_admin"], organization=world.foreign_org, name="IdP")
    assert not ScimToken.objects.exists()


def test_a_name_and_a_sane_lifetime_are_required(world):
    admin = world.users["platform_admin"]
    with pytest.raises(ValidationError):
        scim_token_create(actor=admin, organization=world.org, name="  ")
    with pytest.raises(ValidationError):
        scim_token_create(actor=admin, organization=world.org, name="IdP", days=0)


def _refused(response, *, session_key: str | None = None) -> None:
    """401 with the SCIM error; no session made. A browser's own session may be refreshed by
    the session bookkeeping every request gets, but never replaced by another."""
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="scim"'
    scim_error(response)
    if session_key is None:
        assert not response.cookies
    else:
        assert set(response.cookies) <= {"sessionid"}
        assert all(cookie.value == session_key for cookie in response.cookies.values())


def _no_session_anywhere() -> None:
    assert not Session.objects.exists()
    assert not UserSession.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-scim-token",
        "Bearer gpscim_0123abcd_" + "A" * 43,
        "Bearer gpscim_0123abcd_short",
    ],
    ids=["missing", "basic", "empty", "foreign-format", "unknown-prefix", "malformed"],
)
def test_a_bad_token_is_refused_recorded_and_creates_no_session(world, header):
    """GIVEN a call without a valid SCIM token WHEN it asks to create a user THEN 401 with a SCIM
    error, nothing is created, no session exists and no cookie is set; scim.auth_failed is
    recorded with the token's prefix only."""
    client = Client()
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.post(
        "/scim/v2/Users", new_user("mallory"), content_type="application/scim+json", **extra
    )
    _refused(response)
    assert not User.objects.filter(email="mallory@acme.test").exists()
    _no_session_anywhere()
    event = AuditEvent.objects.get(action="scim.auth_failed")
    assert event.outcome == "failed"
    assert set(event.data) == {"prefix", "reason"}
    if header and header.startswith("Bearer gpscim_"):
        assert event.data["prefix"] == "0123abcd"
        assert "A" * 43 not in event.canonical.decode()


def test_a_wrong_secret_for_a_real_prefix_is_refused(world):
    token = scim_token_for(world)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    _refused(ScimClient(forged).get("/Users"))
    event = AuditEvent.objects.get(action="scim.auth_failed")
    assert event.data["reason"] == "wrong secret"
    assert event.organization_id == world.org.pk


def test_expired_and_revoked_tokens_are_refused(world):
    token = scim_token_for(world)
    assert ScimClient(token).get("/Users").status_code == 200
    row = ScimToken.objects.get()
    assert row.last_used_at is not None
    ScimToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _refused(ScimClient(token).get("/Users"))
    ScimToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() + timedelta(days=1))
    scim_token_revoke(actor=world.users["platform_admin"], token=row, reason="IdP replaced")
    _refused(ScimClient(token).get("/Users"))
    reasons = list(
        AuditEvent.objects.filter(action="scim.auth_failed").values_list("data__reason", flat=True)
    )
    assert sorted(reasons) == ["expired", "revoked"]
    assert AuditEvent.objects.filter(action="scim.token_revoked").count() == 1
    with pytest.raises(ValidationError):
        scim_token_revoke(actor=world.users["platform_admin"], token=row)


def test_a_session_cookie_does_not_authenticate_scim(world):
    """GIVEN a signed-in platform administrator's browser WHEN it calls SCIM without a token
    THEN 401: the session is no credential here (and so CSRF is not needed)."""
    browser = Client()
    browser.force_login(world.users["platform_admin"])
    key = browser.session.session_key
    _refused(browser.get("/scim/v2/Users"), session_key=key)
    response = browser.post("/scim/v2/Users", new_user("eve"), content_type="application/scim+json")
    _refused(response, session_key=key)
    assert not User.objects.filter(email="eve@acme.test").exists()


def test_the_admin_creates_a_token_shows_it_once_and_revokes_it(world):
    """GIVEN a platform administrator in the control panel WHEN they add a SCIM token THEN the
    page shows the token and the base URL once (no-store); the list shows only its prefix; the
    revoke page revokes it."""
    browser = Client()
    browser.force_login(world.users["platform_admin"])
    response = browser.post(reverse("admin:accounts_scimtoken_add"), {"name": "Okta", "days": "90"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    row = ScimToken.objects.get()
    assert f"gpscim_{row.prefix}_" in page
    assert "/scim/v2" in page
    secret = page.split(f"gpscim_{row.prefix}_", 1)[1][:43]
    assert ScimClient(f"gpscim_{row.prefix}_{secret}").get("/Users").status_code == 200
    listing = browser.get(reverse("admin:accounts_scimtoken_changelist")).content.decode()
    assert row.prefix in listing
    assert secret not in listing
    assert (
        secret not in browser.get(reverse("admin:accounts_scimtoken_change", args=[row.pk])).content.decode()
    )
    revoke = reverse("admin:accounts_scimtoken_revoke", args=[row.pk])
    assert browser.post(revoke, {"reason": "rotated"}).status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None


def test_owners_cannot_reach_the_revoke_page(world):
    row = ScimToken.objects.get(pk=scim_token_create(actor=world.users["platform_admin"], organization=world.org,
                                                     name="IdP").token.pk)  # fmt: skip
    browser = Client()
    browser.force_login(world.users["workspace_owner"])
    response = browser.post(reverse("admin:accounts_scimtoken_revoke", args=[row.pk]), {"reason": "x"})
    assert response.status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None
