"""The core journey in a real browser (headless Chromium): a builder changes a workflow and
submits it; an officer approves it in the control panel; the new version is live."""

from __future__ import annotations

import os
from unittest import mock

import pytest

from tests.workflows.conftest import BUSINESS_HOURS

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "secrets"])


@pytest.fixture
def demo(live_server):
    """The demo organisation, with known passwords, at a Tuesday morning in Berlin."""
    from django.core.management import call_command

    from accounts.models import User
    from tests.conftest import ensure_roles, mfa_device_for

    ensure_roles()  # an earlier transactional test may have flushed the migration-made rows
    with mock.patch("governance.access.policies.timezone.now", return_value=BUSINESS_HOURS):
        call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        for user in User.objects.all():
            user.set_password("journey passphrase 2026")
            user.save(update_fields=["password"])
            mfa_device_for(user)  # everyone enrolled an authenticator app at first sign-in
        yield live_server.url


def sign_in(page, base: str, email: str, *, admin: bool = False) -> None:
    if admin:
        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", email)
    else:
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=login]", email)
    page.fill("input[name=password]", "journey passphrase 2026")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/login/" not in page.url, page.content()[:2000]
    # Every sign-in goes on to two-step verification: the code the person's app shows now.
    page.wait_for_url("**/accounts/mfa/verify/**")
    page.fill("input[name=code]", app_code(email))
    with page.expect_navigation():
        page.get_by_role("button", name="Verify").click()
    assert "/accounts/mfa/" not in page.url, page.content()[:2000]


def app_code(email: str) -> str:
    """What the person's authenticator app shows now, computed from their device's key."""
    from accounts.models import User
    from tests.conftest import app_code_of, mfa_device_for

    return app_code_of(mfa_device_for(User.objects.get(email=email)))


def test_builder_changes_officer_approves_version_goes_live(browser, demo):
    from playwright.sync_api import expect

    from workflows.changes.models import Workflow

    base = demo
    with mock.patch("governance.access.policies.timezone.now", return_value=BUSINESS_HOURS):
        builder = browser.new_page()
        checked = browser.checked
        sign_in(builder, base, "builder@demo.example")
        browser.settle(builder, since=checked + 2)  # the sign-in and verification pages, then home
        for link in ("Workflows", "Support ticket triage", "Edit the definition", "JSON view (for experts)"):
            checked = browser.checked
            builder.get_by_role("link", name=link).click()
            browser.settle(builder, since=checked)
        definition = builder.input_value("#id_definition").replace('max_tokens": 300', 'max_tokens": 200')
        builder.fill("#id_definition", definition)
        builder.fill("#id_summary", "Shorter AI answers")
        checked = browser.checked
        with builder.expect_navigation():
            builder.get_by_role("button", name="Save as a new version").click()
        browser.settle(builder, since=checked)
        # The demo's v1 is still in review: the editor asks first, names it and what happens to
        # its reviews, and keeps what was typed; confirming supersedes it.
        assert "Save over the change waiting for review?" in builder.content()
        assert builder.input_value("#id_summary") == "Shorter AI answers"
        checked = browser.checked
        with builder.expect_navigation():
            builder.get_by_role("button", name="Save and supersede").click()
        browser.settle(builder, since=checked)
        assert "Saved as version 2" in builder.content()
        checked = browser.checked
        with builder.expect_navigation():
            builder.get_by_role("button", name="Submit for review").click()
        browser.settle(builder, since=checked)
        assert "Submitted" in builder.content()
        assert "security" in builder.content()

        officer = browser.new_page()
        checked = browser.checked
        sign_in(officer, base, "officer@demo.example", admin=True)
        browser.settle(officer, since=checked + 2)
        checked = browser.checked
        officer.goto(f"{base}/admin/workflows/changerequest/?inbox=mine")
        browser.settle(officer, since=checked)
        for link in ("Sync once a weekday morning", "Review (compliance)…"):
            checked = browser.checked
            officer.get_by_role("link", name=link).click()
            browser.settle(officer, since=checked)
        officer.get_by_label("Approve").check()
        officer.fill("textarea[name=comment]", "Weekday mornings are enough.")
        checked = browser.checked
        with officer.expect_navigation():
            officer.get_by_role("button", name="Confirm").click()
        expect(officer.get_by_text("The change is now applied")).to_be_visible()
        browser.settle(officer, since=checked)  # its accessibility check, before the tabs close
        builder.close()
        officer.close()
    workflow = Workflow.objects.get(slug="crm-sync")
    assert workflow.active_version.number == 2
