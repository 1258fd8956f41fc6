"""The builder's first change in a real browser (headless Chromium), in the structured editor
only — the JSON view is never opened: the trigger shows the fields of its type only; a schedule
typed wrong is named in the error summary at the top (which takes the focus) with everything typed
kept; the next five runs are shown in the workspace's time zone; a step added with *Add a step*
shows the fields of its type only; the draft saves and is submitted for review. Every page passes
axe-core and leaves its screenshot."""

from __future__ import annotations

from unittest import mock

import pytest

from tests.journeys.test_approval_journey import demo, sign_in  # noqa: F401 (fixture)
from tests.workflows.conftest import BUSINESS_HOURS

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "secrets"])


def test_builder_saves_and_submits_in_the_structured_editor(browser, demo):  # noqa: F811
    from playwright.sync_api import expect

    from workflows.changes.models import ChangeRequest, ChangeState

    base = demo
    with mock.patch("governance.access.policies.timezone.now", return_value=BUSINESS_HOURS):
        builder = browser.new_page(viewport={"width": 1280, "height": 800})
        checked = browser.checked
        sign_in(builder, base, "builder@demo.example")
        browser.settle(builder, since=checked + 2)
        for link in ("Workflows", "Exchange rates", "Edit the definition"):
            checked = browser.checked
            builder.get_by_role("link", name=link).click()
            browser.settle(builder, since=checked)
        builder.get_by_label("Summary").fill("Fetch the rates every weekday morning")
        # The trigger's fields follow its type: a schedule has no webhook path.
        builder.get_by_label("Trigger").select_option(label="Webhook")
        expect(builder.get_by_label("Schedule (cron)")).to_be_hidden()
        expect(builder.get_by_label("Webhook path")).to_be_visible()
        builder.get_by_label("Trigger").select_option(label="Schedule")
        expect(builder.get_by_label("Webhook path")).to_be_hidden()
        builder.get_by_label("Schedule (cron)").fill("61 25 * * *")
        checked = browser.checked
        with builder.expect_navigation():
            builder.get_by_role("button", name="Save as a new version").click()
        browser.settle(builder, since=checked)
        summary = builder.locator("#error-summary")
        expect(summary).to_be_focused()
        expect(summary).to_contain_text("1 problem to fix before saving")
        expect(summary.get_by_role("link")).to_have_attribute("href", "#id_trigger_cron")
        expect(builder.get_by_label("Summary")).to_have_value("Fetch the rates every weekday morning")
        expect(builder.get_by_label("Webhook path")).to_be_hidden()  # after the error too
        builder.get_by_label("Schedule (cron)").fill("0 6 * * 1-5")

        # A step of its own: the fields of its type only, once the type is chosen.
        checked = browser.checked
        with builder.expect_navigation():
            builder.get_by_role("button", name="Add a step").click()
        browser.settle(builder, since=checked)
        new_step = builder.locator("fieldset.step").last
        expect(new_step.get_by_label("Expression")).to_be_hidden()
        new_step.get_by_label("Type").select_option(label="transform")
        expect(new_step.get_by_label("Expression")).to_be_visible()
        expect(new_step.get_by_label("Path")).to_be_hidden()
        new_step.get_by_label("Step id").fill("rounded")
        new_step.get_by_label("Expression").fill("{'usd': prev.usd}")
        builder.locator("fieldset.step").nth(1).get_by_label("Next").fill("rounded")

        checked = browser.checked
        with builder.expect_navigation():
            builder.get_by_role("button", name="Save as a new version").click()
        browser.settle(builder, since=checked)
        expect(builder.get_by_text("Saved as version 2")).to_be_visible()
        checked = browser.checked
        with builder.expect_navigation():
            builder.get_by_role("button", name="Submit for review").click()
        browser.settle(builder, since=checked)
        expect(builder.get_by_text("Submitted").first).to_be_visible()
    change = ChangeRequest.objects.get(workflow__slug="exchange-rates", version__number=2)
    assert change.state == ChangeState.SUBMITTED
    definition = change.version.definition
    assert definition["trigger"] == {"type": "schedule", "cron": "0 6 * * 1-5"}
    assert [step["id"] for step in definition["steps"]] == ["fetch", "usd", "rounded"]
