"""Small helpers shared by tests of different apps."""

from __future__ import annotations

import os

import pytest


def unavailable(reason: str) -> None:
    """Skip with ``reason``; under CI (CI set) fail instead, so a missing tool never hides a test.

    ``make pytest`` installs what the tests need (scripts/ensure-*.sh)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI: `make pytest` installs it)")
    pytest.skip(reason)
