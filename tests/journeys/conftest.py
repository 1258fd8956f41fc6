"""The browser of the journeys: Debian's Chromium, headless, driven through Playwright."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.tools import unavailable

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser(monkeypatch):
    """A headless Chromium; skipped where it cannot be had (under CI=1 the test fails instead)."""
    if not os.path.exists(CHROMIUM):
        unavailable("needs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's async-safety check would
    # otherwise refuse the ORM calls the test makes beside it. For these tests only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield instance
        instance.close()
