"""An operator's journey in a real browser (headless Chromium): from the workflow to its runs,
a first attempt with input that is not JSON (kept, with the error on its field), a run started,
then stopped with a reason; a viewer reads the run without a form. Every page passes axe-core."""

from __future__ import annotations

from unittest import mock

import pytest

from tests.journeys.test_approval_journey import demo, sign_in  # noqa: F401 (fixture)
from tests.workflows.conftest import BUSINESS_HOURS

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "secrets"])


def test_operator_starts_and_stops_a_run_viewer_reads_it(browser, demo):  # noqa: F811
    from playwright.sync_api import expect

    from workflows.executions.models import Execution, ExecutionStatus

    base = demo
    # No worker picks the run up here: it stays queued until the operator stops it.
    with (
        mock.patch("governance.access.policies.timezone.now", return_value=BUSINESS_HOURS),
        mock.patch("workflows.executions.services._dispatch"),
    ):
        operator = browser.new_page()
        checked = browser.checked
        sign_in(operator, base, "operator@demo.example")
        browser.settle(operator, since=checked + 2)  # the sign-in and verification pages, then home
        for link in ("Workflows", "CRM sync", "Runs"):
            checked = browser.checked
            operator.get_by_role("link", name=link).click()
            browser.settle(operator, since=checked)
        expect(operator.get_by_role("heading", name="Run this workflow")).to_be_visible()
        operator.get_by_label("Input (a JSON object)").fill('{"since": "yesterday"')
        checked = browser.checked
        with operator.expect_navigation():
            operator.get_by_role("button", name="Start the run").click()
        browser.settle(operator, since=checked)
        expect(operator.get_by_text("This is not valid JSON")).to_be_visible()
        assert operator.input_value("#id_input") == '{"since": "yesterday"'
        operator.get_by_label("Input (a JSON object)").fill('{"since": "<b>yesterday</b>"}')
        checked = browser.checked
        with operator.expect_navigation():
            operator.get_by_role("button", name="Start the run").click()
        browser.settle(operator, since=checked)
        execution = Execution.objects.get()
        assert operator.url.endswith(f"/workflows/runs/{execution.pk}/")
        expect(operator.get_by_role("heading", name="Timeline")).to_be_visible()
        checked = browser.checked
        with operator.expect_navigation():
            operator.get_by_role("button", name="Stop the run").click()
        browser.settle(operator, since=checked)
        expect(operator.get_by_text("This field is required.")).to_be_visible()
        operator.get_by_label("Reason for stopping this run").fill("Started with the wrong date range")
        checked = browser.checked
        with operator.expect_navigation():
            operator.get_by_role("button", name="Stop the run").click()
        browser.settle(operator, since=checked)
        stopped = operator.get_by_role("listitem").filter(has_text="Stopped by operator@demo.example")
        expect(stopped).to_contain_text("Started with the wrong date range")
        execution.refresh_from_db()
        assert execution.status == ExecutionStatus.CANCELLED

        viewer = browser.new_page()
        checked = browser.checked
        sign_in(viewer, base, "viewer@demo.example")
        browser.settle(viewer, since=checked + 2)
        checked = browser.checked
        viewer.goto(f"{base}/workflows/runs/{execution.pk}/")
        browser.settle(viewer, since=checked)
        expect(viewer.get_by_text("Cancelled").first).to_be_visible()
        checked = browser.checked
        viewer.goto(f"{base}/workflows/{execution.workflow_id}/runs/")
        browser.settle(viewer, since=checked)
        expect(viewer.get_by_role("link", name=f"Run {execution.pk}")).to_be_visible()
        assert viewer.get_by_role("button", name="Start the run").count() == 0
