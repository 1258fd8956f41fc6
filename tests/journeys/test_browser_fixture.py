"""The journeys' browser fixture itself."""

from __future__ import annotations

import pytest


def test_a_journey_skipped_before_it_opens_a_page_is_reported_as_skipped(browser):
    """A journey that skips before its first page (a missing identity provider, say) is a skip
    with its message, not an error of the fixture that finds no page audited."""
    pytest.skip("skipped before the first page, as a journey without its identity provider is")
