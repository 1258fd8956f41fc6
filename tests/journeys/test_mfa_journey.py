"""MFA in a real browser (headless Chromium with a virtual WebAuthn authenticator): a newcomer is
made to enrol at first sign-in, registers a security key, keeps the backup codes; at the next
sign-in the key verifies the session."""

from __future__ import annotations

import pytest

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "secrets"]),
    pytest.mark.no_auto_mfa,
]
PASSPHRASE = "journey passphrase 2026"


@pytest.fixture
def newcomer(live_server, settings):
    from tests.conftest import ensure_roles
    from tests.factories import UserFactory

    ensure_roles()
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    user = UserFactory(email="newcomer@acme.test")
    user.set_password(PASSPHRASE)
    user.save(update_fields=["password"])
    return user


def _password(page, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSPHRASE)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_newcomer_enrols_a_security_key_then_signs_in_with_it(browser, live_server, newcomer):
    from playwright.sync_api import expect

    from audit.models import AuditEvent

    base = live_server.url
    assert base.startswith("http://localhost:")
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {"options": {"protocol": "ctap2", "transport": "usb", "hasResidentKey": True,
                     "hasUserVerification": True, "isUserVerified": True}},
    )  # fmt: skip

    checked = browser.checked
    _password(page, base, newcomer.email)
    page.wait_for_url("**/accounts/mfa/enrol/**")
    browser.settle(page, since=checked + 1)  # the sign-in page, then enrolment
    expect(page.get_by_label("QR code for your authenticator app")).to_be_visible()
    checked = browser.checked
    page.goto(f"{base}/workflows/")  # any page leads back to enrolment
    page.wait_for_url("**/accounts/mfa/enrol/**")
    browser.settle(page, since=checked)
    checked = browser.checked
    page.get_by_role("button", name="Register a security key").click()
    page.wait_for_url("**/accounts/mfa/backup-codes/**")
    browser.settle(page, since=checked)
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    assert page.locator(".backup-codes li").count() == 10
    checked = browser.checked
    page.get_by_role("link", name="I have kept them — go on").click()
    page.wait_for_url("**/workflows/")
    browser.settle(page, since=checked)

    checked = browser.checked
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/**")
    browser.settle(page, since=checked)
    checked = browser.checked
    _password(page, base, newcomer.email)
    page.wait_for_url("**/accounts/mfa/verify/**")
    browser.settle(page, since=checked + 1)  # the sign-in page, then verification
    checked = browser.checked
    page.get_by_role("button", name="Use security key").click()
    page.wait_for_url(f"{base}/")
    browser.settle(page, since=checked)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    methods = list(AuditEvent.objects.filter(action="mfa.verified").values_list("data__method", flat=True))
    assert methods == ["webauthn", "webauthn"]
    assert not [error for error in errors if "Content Security Policy" in error]


def test_newcomer_enrols_an_authenticator_app_with_the_key_shown_on_the_page(browser, live_server, newcomer):
    """The key under the QR code, typed into an app: the app's code confirms it."""
    import base64
    import time

    from django_otp.oath import TOTP
    from playwright.sync_api import expect

    base = live_server.url
    page = browser.new_page()
    checked = browser.checked
    _password(page, base, newcomer.email)
    page.wait_for_url("**/accounts/mfa/enrol/**")
    browser.settle(page, since=checked + 1)  # the sign-in page, then enrolment
    expect(page.locator("figure.qr svg")).to_be_visible()
    secret = page.inner_text("#totp-secret").replace(" ", "")
    totp = TOTP(base64.b32decode(secret + "=" * (-len(secret) % 8)))
    totp.time = time.time()
    page.fill("input[name=code]", f"{totp.token():06d}")
    checked = browser.checked
    page.get_by_role("button", name="Confirm the app").click()
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    browser.settle(page, since=checked)
    checked = browser.checked
    page.get_by_role("link", name="I have kept them — go on").click()
    page.wait_for_url(f"{base}/")
    browser.settle(page, since=checked)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
