"""The control panel at 1,280 × 800 (a common laptop screen) in a real browser: the wide tables
(changes, the ledger, policies, members, workflows, integrations, service accounts) show every
column, scrolling in their own box when they are wider than the screen; the page itself never
scrolls sideways and nothing is cut off.

Seeded with the demo's data plus long values of the kind real workspaces have: long workflow
names, a long summary, an endpoint URL without a space, a ledger event about them.
"""

from __future__ import annotations

from unittest import mock

import pytest

from tests.journeys.test_approval_journey import demo, sign_in  # noqa: F401  (demo: a fixture)
from tests.workflows.conftest import BUSINESS_HOURS

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "secrets"])

VIEWPORT = {"width": 1280, "height": 800}
LONG_NAME = "Customer support ticket triage with escalation to the regional on-call team (EU, weekdays)"
LONG_TOKEN = "escalation-policy-for-regional-on-call-teams-including-weekend-coverage-and-holidays"
LONG_URL = (
    "https://tickets.eu-west-1.internal.support-platform.example.com/api/v2/tickets/escalations/"
    "regional/on-call?include=assignee,history,attachments,sla-breaches"
)
# The wide lists an officer works through, by admin URL.
PAGES = (
    "/admin/workflows/changerequest/",
    "/admin/audit/auditevent/",
    "/admin/access/policy/",
    "/admin/access/policychange/",
    "/admin/tenancy/membership/",
    "/admin/workflows/workflow/",
    "/admin/workflows/integration/",
)
# For each table of the page: the cells whose right edge lies beyond what is in view (the window,
# or the box the table scrolls in), and whether such a box lets the reader scroll to them. And
# does the page itself (not a box within it) scroll sideways?
MEASURE = """() => {
  const width = document.documentElement.clientWidth;
  const tables = [...document.querySelectorAll('#content table')].map((table) => {
    let box = table.parentElement;
    while (box && box !== document.body) {
      const overflow = getComputedStyle(box).overflowX;
      if (overflow === 'auto' || overflow === 'scroll') break;
      box = box.parentElement;
    }
    const scroller = box && box !== document.body ? box : null;
    const inView = Math.min(width, scroller ? scroller.getBoundingClientRect().right : width);
    const hidden = [...table.querySelectorAll('th, td')]
      .filter((cell) => cell.getBoundingClientRect().right > inView + 1)
      .map((cell) => cell.className || cell.textContent.trim().slice(0, 40));
    const reachable = scroller !== null && scroller.getBoundingClientRect().right <= width + 1
      && scroller.scrollWidth >= table.getBoundingClientRect().width - 1;
    return {id: table.id, hidden: [...new Set(hidden)], reachable};
  });
  return {width, pageScrollsSideways: document.documentElement.scrollWidth > width + 1, tables};
}"""


@pytest.fixture
def long_values(demo):  # noqa: F811  (the fixture imported above)
    """The demo with long names, a long summary, a long URL and a ledger event naming them."""
    from accounts.models import User
    from audit.services import audit_event_record, audited_transaction
    from governance.access.models import Policy, PolicyChange
    from workflows.changes.models import ChangeRequest, Workflow
    from workflows.events import WorkflowEvent
    from workflows.integrations.models import Integration

    workflow = Workflow.objects.order_by("pk").first()
    Workflow.objects.filter(pk=workflow.pk).update(name=LONG_NAME)
    ChangeRequest.objects.filter(workflow=workflow).update(summary=f"{LONG_NAME}: {LONG_TOKEN}")
    Integration.objects.update(endpoint_url=LONG_URL, name=f"Ticketing {LONG_TOKEN}"[:120])
    workflow.refresh_from_db()
    PolicyChange.objects.create(
        organization=workflow.workspace.organization,
        name=LONG_TOKEN[:80],
        text='@id("x")\nforbid(principal, action, resource) when { false };',
        reason=LONG_NAME,
        proposed_by=User.objects.get(email="privacy@demo.example"),
    )
    with audited_transaction():
        event = audit_event_record(
            action=WorkflowEvent.WORKFLOW_CHANGE_SUBMITTED,
            actor=None,
            target=workflow,
            organization_id=workflow.workspace.organization_id,
            workspace_id=workflow.workspace_id,
            data={"summary": LONG_TOKEN},
        )
    change = ChangeRequest.objects.filter(workflow=workflow).order_by("-pk").first()
    shipped = Policy.objects.filter(organization__isnull=True).order_by("pk").first()
    # The officer's home, the two detail pages with tables (a change and a ledger event), and the
    # proposal page of a shipped policy (its text shown, not offered for typing).
    details = (
        "/admin/",
        f"/admin/workflows/changerequest/{change.pk}/change/",
        f"/admin/audit/auditevent/{event.pk}/change/",
        f"/admin/access/policychange/add/?policy={shipped.pk}",
    )
    return demo, details


def test_control_panel_tables_are_whole_at_1280_pixels(browser, long_values):
    """GIVEN an officer at 1,280 × 800 WHEN they open each wide list of the control panel, their
    home, a change and a ledger event THEN every table cell is in view (long values wrap instead of
    pushing the right-hand columns out of sight) and the page does not scroll sideways."""
    base, details = long_values
    with mock.patch("governance.access.policies.timezone.now", return_value=BUSINESS_HOURS):
        officer = browser.new_page(viewport=VIEWPORT)
        checked = browser.checked
        sign_in(officer, base, "officer@demo.example", admin=True)
        browser.settle(officer, since=checked + 2)  # the sign-in and verification pages, then home
        clipped = {}
        for url in (*PAGES, *details):
            checked = browser.checked
            response = officer.goto(f"{base}{url}")
            assert response.status == 200, url
            measured = officer.evaluate(MEASURE)
            assert measured["tables"] or url in details, f"{url}: no table"
            problems = [table for table in measured["tables"] if table["hidden"]]
            if problems or measured["pageScrollsSideways"]:
                clipped[url] = {"page scrolls sideways": measured["pageScrollsSideways"], "tables": problems}
            browser.settle(officer, since=checked)  # its accessibility check and screenshot, before moving on
        officer.close()
    assert clipped == {}
