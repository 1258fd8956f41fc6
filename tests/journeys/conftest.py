"""The browser of the journeys: Debian's Chromium, headless, driven through Playwright.

Every page of the portal that a journey loads is checked with axe-core (WCAG 2.0/2.1 A and AA rules) and saved as a
full-page screenshot under ``var/journeys/<test>/`` for a reviewer who does not run a browser.
A journey fails when any page has a critical or serious violation; lesser ones are listed in
``var/journeys/<test>/accessibility.txt``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.tools import unavailable

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING = ("critical", "serious")
_RUN = (
    "async (tags) => { const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});"
    " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
    " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})); }"
)


class AuditedBrowser:
    """``browser.new_page()`` as the journeys use it, with every loaded page audited."""

    def __init__(self, browser, folder: Path, axe: str, origin: str):
        self._browser, self._folder, self._axe, self._origin = browser, folder, axe, origin
        self.audits: list[tuple[str, list]] = []
        self.unaudited: list[tuple[str, str]] = []
        self._shots = 0
        self._pages: list = []

    def new_page(self, **options):
        # The portal's CSP allows only its own scripts; the check injects axe into the page.
        page = self._browser.new_context(bypass_csp=True, **options).new_page()
        page.on("load", self._audit)
        self._pages.append(page)
        return page

    def audit_open_pages(self) -> None:
        """Audit the page each tab ends on, if its load was not audited (the journey's last step
        often ends the test before the load's check has run)."""
        audited = {url for url, _ in self.audits}
        for page in self._pages:
            if not page.is_closed() and page.url not in audited:
                self._audit(page)

    @property
    def checked(self) -> int:
        """How many loads have been checked (or failed to be) so far."""
        return len(self.audits) + len(self.unaudited)

    def settle(self, page, *, since: int, attempts: int = 600) -> None:
        """Wait until the check of the load that followed ``since`` (``checked`` before the
        navigation) has finished: it runs beside the journey's own calls, and a ``goto`` made
        before it ends would cut it short. The patience (``attempts`` of 50 ms) is per check, not
        for all of them: a sign-in waits for three pages, each slow on a busy machine."""
        waited, seen = 0, self.checked
        while waited < attempts:
            if self.checked > since:
                return
            if self.checked != seen:
                waited, seen = 0, self.checked
            page.wait_for_timeout(50)
            waited += 1
        self._audit(page)

    def _audit(self, page) -> None:
        url = page.url
        if not url.startswith(self._origin):
            return  # an identity provider's own page: not the portal's to answer for
        try:
            page.add_script_tag(content=self._axe)
            violations = page.evaluate(_RUN, WCAG_TAGS)
            self._shots += 1
            number = self._shots
            name = re.sub(r"[^a-z0-9]+", "-", url.split("://", 1)[-1].split("/", 1)[-1].lower()).strip("-")
            page.screenshot(
                path=str(self._folder / f"{number:02d}-{name[:60] or 'home'}.png"), full_page=True
            )
        except Exception as error:
            self.unaudited.append((url, type(error).__name__))
            return
        self.audits.append((url, violations))

    def close(self) -> None:
        self._browser.close()


@pytest.fixture
def browser(monkeypatch, request):
    """A headless Chromium; skipped where it cannot be had (under CI=1 the test fails instead)."""
    if not os.path.exists(CHROMIUM):
        unavailable("needs Debian's chromium (apt-get install chromium)")
    if not AXE.exists():
        unavailable("needs axe-core (npm ci in tests/journeys/axe; `make pytest` runs it)")
    from playwright.sync_api import sync_playwright

    folder = ROOT / "var" / "journeys" / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # Playwright's sync API runs an event loop in this thread; Django's async-safety check would
    # otherwise refuse the ORM calls the test makes beside it. For these tests only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        audited = AuditedBrowser(
            instance, folder, AXE.read_text(), request.getfixturevalue("live_server").url
        )
        yield audited
        audited.audit_open_pages()
        instance.close()
    if not audited._pages:
        return  # skipped before it opened a page (e.g. its identity provider is not installed)
    lines, failing = [], []
    for url, violations in audited.audits:
        for violation in violations:
            line = (
                f"{violation['impact']}\t{violation['id']}\t{url}\t{violation['help']}\t{violation['nodes']}"
            )
            lines.append(line)
            if violation["impact"] in FAILING:
                failing.append(line)
    lines += [f"not audited\t{url}\t{reason}" for url, reason in audited.unaudited]
    (folder / "accessibility.txt").write_text(
        f"{len(audited.audits)} pages audited (axe-core, {', '.join(WCAG_TAGS)})\n" + "\n".join(lines) + "\n"
    )
    assert audited.audits, "no page was audited"
    assert not failing, "critical or serious accessibility violations:\n" + "\n".join(failing)
