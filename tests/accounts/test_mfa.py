"""MFA: enrolment forced at first sign-in, verification with TOTP and backup codes, replay and
throttling refused and recorded, enforcement on every path, the SSO contract, the control panel,
removal and the administrator's reset."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from accounts.models import BackupCode, BackupCodeDevice, UserSession
from accounts.sessions import session_ref_of
from audit.models import AuditEvent
from tests.conftest import PASSWORD, app_code_of, mfa_device_for

pytestmark = pytest.mark.no_auto_mfa
HOME = "/"


def signed_in(user) -> Client:
    """A browser that typed the right password (and nothing more)."""
    client = Client()
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


def session_row(client) -> UserSession:
    return UserSession.objects.get(session_ref=session_ref_of(client.session.session_key))


def events(action: str):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_first_sign_in_forces_enrolment_with_a_qr_code_then_shows_backup_codes_once(world):
    """GIVEN a person without a device WHEN they sign in THEN every page sends them to enrolment;
    a correct code from the scanned app confirms it, verifies the session (new key, same record)
    and shows ten backup codes once; the ledger has enrolled, verified, codes generated."""
    viewer = world.users["viewer"]
    client = signed_in(viewer)
    row_before = session_row(client)
    key_before = client.session.session_key
    response = client.get(HOME)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account-mfa-enrol"))
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "<svg" in page.content.decode()
    assert "otpauth://" not in page.content.decode()
    device = TOTPDevice.objects.get(user=viewer, confirmed=False)

    confirmed = client.post(
        reverse("account-mfa-enrol"), {"code": app_code_of(device), "name": "Phone", "next": "/"}
    )
    assert confirmed.status_code == 200
    codes = confirmed.context["codes"]
    assert len(codes) == 10
    assert "no-store" in confirmed["Cache-Control"]
    device.refresh_from_db()
    assert device.confirmed
    assert device.name == "Phone"
    assert client.session.session_key != key_before
    row = session_row(client)
    assert row.pk == row_before.pk
    assert row.mfa_verified_at is not None
    assert UserSession.objects.filter(user=viewer).count() == 1
    assert client.get(HOME).status_code == 200
    assert [e.data["method"] for e in events("mfa.enrolled")] == ["totp"]
    assert events("mfa.verified")[0].data["session"] == row.session_ref[:16]
    assert events("mfa.backup_codes_generated")[0].data["count"] == 10
    stored = set(BackupCode.objects.values_list("digest", flat=True))
    assert not stored & {c for code in codes for c in (code, code.replace("-", ""))}


def test_a_wrong_code_at_enrolment_is_a_field_error_and_recorded(world):
    """GIVEN enrolment WHEN the code is wrong or not a code THEN a field error, no 500, recorded."""
    client = signed_in(world.users["viewer"])
    client.get(reverse("account-mfa-enrol"))
    response = client.post(reverse("account-mfa-enrol"), {"code": "000000"})
    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    garbage = client.post(reverse("account-mfa-enrol"), {"code": "<script>x</script>"})
    assert garbage.status_code == 200
    assert "six digits" in garbage.content.decode()
    assert events("mfa.failed")[0].data["reason"] == "bad_code"
    assert client.get(HOME).status_code == 302


def test_enrolled_person_verifies_with_their_app_and_goes_where_they_were_going(world):
    """GIVEN an enrolled person WHEN they sign in THEN pages send them to verification with
    ``next``; a wrong code is refused and recorded; the right one opens the page."""
    builder = world.users["workflow_builder"]
    device = mfa_device_for(builder)
    client = signed_in(builder)
    response = client.get(reverse("workflow-list"))
    assert response["Location"] == f"{reverse('account-mfa-verify')}?next=%2Fworkflows%2F"
    wrong = client.post(reverse("account-mfa-verify"), {"code": "12345", "next": "/workflows/"})
    assert wrong.status_code == 200
    assert "not correct" in wrong.content.decode()
    ok = client.post(reverse("account-mfa-verify"), {"code": app_code_of(device), "next": "/workflows/"})
    assert ok.status_code == 302
    assert ok["Location"] == "/workflows/"
    assert client.get(reverse("workflow-list")).status_code == 200
    assert [e.data["method"] for e in events("mfa.verified")] == ["totp"]
    assert events("mfa.failed")[0].outcome == "failed"


def test_verification_never_redirects_off_site(world):
    """GIVEN a ``next`` naming another site WHEN the code is right THEN the person lands at home."""
    builder = world.users["workflow_builder"]
    device = mfa_device_for(builder)
    client = signed_in(builder)
    ok = client.post(
        reverse("account-mfa-verify"), {"code": app_code_of(device), "next": "https://evil.test/"}
    )
    assert ok["Location"] == reverse("home")


def test_totp_replay_is_refused_recorded_and_creates_no_verified_session(world):
    """GIVEN a code that verified one session WHEN it is typed again in another session (same
    time step) THEN it is refused as a replay, recorded, and that half-signed-in session ends:
    no session is left to the one who replayed it."""
    officer = world.users["compliance_officer"]
    device = mfa_device_for(officer)
    first = signed_in(officer)
    code = app_code_of(device)
    assert first.post(reverse("account-mfa-verify"), {"code": code})["Location"] == reverse("home")

    attacker = signed_in(officer)
    row = session_row(attacker)
    response = attacker.post(reverse("account-mfa-verify"), {"code": code})
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")
    failed = events("mfa.failed")
    assert [(e.data["reason"], e.data["session"]) for e in failed] == [("replay", row.session_ref[:16])]
    row.refresh_from_db()
    assert row.mfa_verified_at is None
    assert row.ended_at is not None
    assert "_auth_user_id" not in attacker.session
    assert DEVICE_ID_SESSION_KEY not in attacker.session
    assert attacker.get(HOME).status_code == 302
    assert attacker.get(reverse("admin:index")).status_code == 302
    assert UserSession.objects.filter(user=officer, mfa_verified_at__isnull=False).count() == 1
    assert UserSession.objects.filter(user=officer, ended_at__isnull=True).count() == 1


def test_failures_are_throttled_and_recorded_as_such(world, settings):
    """GIVEN one wrong code (each failure doubles the wait; here the first wait is long) WHEN the
    right code follows at once THEN it is refused as throttled, recorded, and nothing verified."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 3600
    builder = world.users["workflow_builder"]
    device = mfa_device_for(builder)
    client = signed_in(builder)
    client.post(reverse("account-mfa-verify"), {"code": "000000"})
    response = client.post(reverse("account-mfa-verify"), {"code": app_code_of(device)})
    assert "Too many wrong codes" in response.content.decode()
    assert [e.data["reason"] for e in events("mfa.failed")] == ["bad_code", "throttled"]
    assert client.get(HOME).status_code == 302


def test_backup_codes_work_once_each_and_are_stored_only_as_keyed_digests(world):
    """GIVEN generated backup codes WHEN one is used THEN the session is verified and the code is
    spent: a second use fails; the ledger says how many are left."""
    auditor = world.users["auditor"]
    mfa_device_for(auditor)
    codes = mfa.backup_codes_generate(actor=auditor)
    client = signed_in(auditor)
    ok = client.post(reverse("account-mfa-verify"), {"code": codes[3].lower()})
    assert ok.status_code == 302
    assert events("mfa.backup_code_used")[0].data["remaining"] == 9
    assert events("mfa.verified")[0].data["method"] == "backup_codes"
    again = signed_in(auditor).post(reverse("account-mfa-verify"), {"code": codes[3]})
    assert again.status_code == 200
    assert events("mfa.failed")[0].data["reason"] == "bad_code"
    digests = list(BackupCode.objects.values_list("digest", flat=True))
    assert len(digests) == 9
    assert all(len(d) == 64 for d in digests)
    assert not any(code.replace("-", "") in digest.upper() for code in codes for digest in digests)


def test_session_api_calls_need_mfa_token_calls_do_not(world):
    """GIVEN a password-only session WHEN it calls the API THEN 403 naming MFA; a knox token (made
    by a verified person) is not a session and is answered."""
    from rest_framework.test import APIClient

    from accounts.services import api_token_create

    auditor = world.users["auditor"]
    client = signed_in(auditor)
    for url in (reverse("workspace-list"), "/api/docs/", "/api/v1/no-such-endpoint/"):
        response = client.get(url)
        assert response.status_code == 403
        assert response.json()["code"] == "mfa_required"
    assert "Multi-factor" in response.json()["detail"]
    token = api_token_create(actor=None, user=auditor, hours=1)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get(reverse("workspace-list")).status_code == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/healthz", 200),
        ("/ledger/public-key.pem", 200),
        ("/accounts/logout/", 200),
        ("/static/css/portal.css", None),
    ],
)
def test_only_sign_in_out_mfa_pages_static_health_and_ledger_keys_are_exempt(world, path, status):
    """GIVEN a password-only session WHEN it opens an exempt path THEN it is not sent to MFA."""
    client = signed_in(world.users["viewer"])
    response = client.get(path)
    assert not response.get("Location", "").startswith("/accounts/mfa/")
    if status is not None:
        assert response.status_code == status


@pytest.mark.parametrize(
    "path", ["/no-such-page/", "/oncall/", "/admin/", "/accounts/sessions/", "/workflows/"]
)
def test_every_other_path_is_enforced_unknown_ones_too(world, path):
    """GIVEN a password-only session WHEN it opens any other path, known or not THEN MFA first."""
    client = signed_in(world.users["viewer"])
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account-mfa-enrol"))


def test_device_list_and_new_backup_codes_need_a_verified_session(world):
    """GIVEN an enrolled person who only typed the password WHEN they open their devices, the
    enrolment page or ask for new backup codes THEN they are sent to verification first."""
    builder = world.users["workflow_builder"]
    mfa_device_for(builder)
    client = signed_in(builder)
    for response in (
        client.get(reverse("account-mfa")),
        client.get(reverse("account-mfa-enrol")),
        client.post(reverse("account-mfa-backup-codes")),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account-mfa-verify"))
    assert not TOTPDevice.objects.filter(user=builder, confirmed=False).exists()


def test_idp_mfa_claim_counts_unless_a_step_up_is_required(world):
    """GIVEN an SSO session whose IdP MFA claim the administrator trusts WHEN it opens a page THEN
    it passes; WHEN conditional access requires a step-up THEN a local factor is needed anyway;
    a malformed claim counts for nothing."""
    viewer = world.users["viewer"]
    client = signed_in(viewer)
    session = client.session
    session["mfa_via_idp"] = {"provider": "okta", "claim": "amr=mfa", "at": "2026-11-29T10:00:00Z"}
    session.save()
    assert client.get(HOME).status_code == 200
    session["mfa_step_up_required"] = True
    session.save()
    response = client.get(HOME)
    assert response["Location"].startswith(reverse("account-mfa-enrol"))
    device = mfa_device_for(viewer)
    assert client.get(HOME)["Location"].startswith(reverse("account-mfa-verify"))
    client.post(reverse("account-mfa-verify"), {"code": app_code_of(device)})
    assert client.get(HOME).status_code == 200

    other = signed_in(world.users["auditor"])
    session = other.session
    session["mfa_via_idp"] = "yes"
    session.save()
    assert other.get(HOME).status_code == 302


def test_control_panel_needs_a_verified_session_and_its_login_leads_through_mfa(world):
    """GIVEN an officer WHEN they sign in at the control panel's login THEN the panel sends them
    to verification; after the code it opens. A password-only session is not admitted."""
    officer = world.users["compliance_officer"]
    device = mfa_device_for(officer)
    client = Client()
    response = client.post(reverse("admin:login"), {"username": officer.email, "password": PASSWORD})
    assert response.status_code == 302
    index = client.get(reverse("admin:index"))
    assert index["Location"] == f"{reverse('account-mfa-verify')}?next=%2Fadmin%2F"
    assert client.get(reverse("admin:login"))["Location"].startswith(reverse("account-mfa-verify"))
    client.post(reverse("account-mfa-verify"), {"code": app_code_of(device), "next": "/admin/"})
    assert client.get(reverse("admin:index")).status_code == 200


def test_has_permission_itself_refuses_an_unverified_session(world, rf):
    """GIVEN a request of an officer without MFA THEN the admin site's own check says no."""
    from django.contrib.sessions.backends.db import SessionStore

    from governance.admin_site import site

    request = rf.get("/admin/")
    request.user = world.users["compliance_officer"]
    request.user.is_verified = lambda: False
    request.session = SessionStore()
    assert site.has_permission(request) is False
    request.user.is_verified = lambda: True
    assert site.has_permission(request) is True


def test_people_see_and_remove_their_own_devices_only(world):
    """GIVEN a verified person WHEN they remove their device THEN it goes (recorded) and the next
    request asks for enrolment; another person's device is not theirs to remove."""
    builder, viewer = world.users["workflow_builder"], world.users["viewer"]
    device = mfa_device_for(builder)
    others = mfa_device_for(viewer)
    client = Client()
    client.force_login(builder)
    from tests.conftest import mfa_complete

    mfa_complete(client, builder)
    page = client.get(reverse("account-mfa"))
    assert page.status_code == 200
    assert "Test app" in page.content.decode()
    stranger = client.post(reverse("account-mfa-device-remove", args=["totp", others.pk]))
    assert stranger.status_code == 404
    removed = client.post(reverse("account-mfa-device-remove", args=["totp", device.pk]))
    assert removed.status_code == 302
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    assert events("mfa.device_removed")[0].data["method"] == "totp"
    assert client.get(HOME)["Location"].startswith(reverse("account-mfa-enrol"))


def test_administrator_resets_a_users_mfa_and_others_cannot(world):
    """GIVEN a user with an app and backup codes WHEN a platform administrator resets their MFA
    THEN every device goes, recorded, and the user's verified session must enrol again; an
    auditor (no user.manage) is refused."""
    from tests.conftest import mfa_complete

    builder = world.users["workflow_builder"]
    mfa_device_for(builder)
    mfa.backup_codes_generate(actor=builder)
    victim = Client()
    victim.force_login(builder)
    mfa_complete(victim, builder)
    assert victim.get(HOME).status_code == 200

    url = reverse("admin:accounts_user_mfa_reset", args=[builder.pk])
    auditor = Client()
    auditor.force_login(world.users["auditor"])
    mfa_complete(auditor, world.users["auditor"])
    assert auditor.post(url).status_code in (403, 404)
    admin = Client()
    admin.force_login(world.users["platform_admin"])
    mfa_complete(admin, world.users["platform_admin"])
    assert "Reset MFA" in admin.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert admin.get(url).status_code == 200
    assert admin.post(url).status_code == 302
    assert not TOTPDevice.objects.filter(user=builder).exists()
    assert not BackupCodeDevice.objects.filter(user=builder).exists()
    assert events("mfa.reset")[0].data["removed"] == 2
    assert victim.get(HOME)["Location"].startswith(reverse("account-mfa-enrol"))


def test_the_otpauth_uri_and_the_key_are_never_logged(world):
    """GIVEN every log record captured WHEN a person enrols THEN no record holds the URI or key."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler, root = Keep(level=logging.DEBUG), logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        client = signed_in(world.users["viewer"])
        client.get(reverse("account-mfa-enrol"))
        device = TOTPDevice.objects.get(user=world.users["viewer"], confirmed=False)
        client.post(reverse("account-mfa-enrol"), {"code": app_code_of(device)})
        logging.getLogger("accounts").info("capture works")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = "\n".join(record.getMessage() + repr(record.args) for record in records)
    assert "capture works" in text
    assert "otpauth" not in text
    assert device.key not in text
    ledger = "".join(bytes(e.canonical).decode() for e in AuditEvent.objects.all())
    assert device.key not in ledger
    assert "otpauth" not in ledger
