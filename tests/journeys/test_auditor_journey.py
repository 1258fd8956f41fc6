"""The auditor's journey in a real browser (headless Chromium): from the portal's home to the
control panel, whose first screen does not say that changes wait for an auditor's review; the
ledger's events; an evidence package ordered, with the explanation of the orders in view beside the
"Order a package" button. Every page passes axe-core and leaves its screenshot."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest

from tests.journeys.test_approval_journey import demo, sign_in  # noqa: F401 (fixture)
from tests.workflows.conftest import BUSINESS_HOURS

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "secrets"])

VIEWPORT = {"width": 1280, "height": 800}
# Whether two elements' boxes overlap on screen (the one drawn over the other hides it).
OVERLAP = """([a, b]) => {
  const r = document.querySelector(a).getBoundingClientRect();
  const s = document.querySelector(b).getBoundingClientRect();
  return r.left < s.right && s.left < r.right && r.top < s.bottom && s.top < r.bottom;
}"""


def test_auditor_reads_the_ledger_and_orders_an_evidence_package(browser, demo, request):  # noqa: F811
    from playwright.sync_api import expect

    from audit.models import EvidenceOrder
    from audit.sealing import ledger_seal_all

    base = demo
    # The real clock from here on (the demo was seeded on the journeys' Tuesday morning): the
    # package covers that morning, which is then in the past. Nothing an auditor does depends on the hour.
    real_clock = mock.patch("governance.access.policies.timezone.now", side_effect=lambda: datetime.now(UTC))
    real_clock.start()
    request.addfinalizer(real_clock.stop)
    auditor = browser.new_page(viewport=VIEWPORT)
    checked = browser.checked
    sign_in(auditor, base, "auditor@demo.example")
    browser.settle(auditor, since=checked + 2)  # the sign-in and verification pages, then home
    checked = browser.checked
    auditor.get_by_role("link", name="Open the control panel").click()
    browser.settle(auditor, since=checked)
    expect(auditor.get_by_role("heading", name="Posture")).to_be_visible()
    # An auditor decides no change: nothing is said to wait for their review.
    expect(auditor.get_by_text("Changes waiting for my review")).to_have_count(0)
    # The posture rows read as sentences: a link stays in its line, not a block of its own.
    links = auditor.locator(".posture td a")
    assert links.count()
    assert {links.nth(i).evaluate("a => getComputedStyle(a).display") for i in range(links.count())} == {
        "inline"
    }
    # ... and the values have the room of the row, not a letter's width.
    widths = auditor.locator(".posture td").evaluate_all(
        "cells => cells.map(c => c.getBoundingClientRect().width)"
    )
    assert min(widths) > 200, widths

    checked = browser.checked
    auditor.get_by_role("link", name="Audit events").first.click()
    expect(auditor.locator("#result_list")).to_be_visible()
    browser.settle(auditor, since=checked)  # its accessibility check, before moving on

    checked = browser.checked
    auditor.goto(f"{base}/admin/audit/evidenceorder/")
    browser.settle(auditor, since=checked)
    order = auditor.get_by_role("link", name="Order a package")
    expect(order).to_be_visible()
    assert not auditor.evaluate(OVERLAP, [".evidence-help", ".object-tools"])
    checked = browser.checked
    order.click()
    browser.settle(auditor, since=checked)
    ledger_seal_all()  # what the beat does within a second in the quick start and in production
    auditor.select_option("select[name=workspace]", label="Customer Operations (EU)")
    seeded = BUSINESS_HOURS.date()  # the day the demo fixture seeded on (its clock)
    auditor.fill("input[name=period_start]", (seeded - timedelta(days=1)).isoformat())
    auditor.fill("input[name=period_end]", seeded.isoformat())
    checked = browser.checked
    with auditor.expect_navigation():
        auditor.get_by_role("button", name="Save", exact=True).click()
    expect(auditor.get_by_text("evidence order #")).not_to_have_count(0)
    # Built in the background (at once, in the tests): ready to download, or its progress.
    expect(auditor.locator("#result_list")).to_contain_text(re.compile(r"Ready|Building \d+%"))
    browser.settle(auditor, since=checked)
    assert EvidenceOrder.objects.count() == 1
