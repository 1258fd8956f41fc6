"""Posture at a glance for the control panel's index: panels that the apps register.

Each app that owns something worth watching (on-call overrides, pending policy changes, ledger
health, service accounts) registers a panel from its ``admin.py``: a function of the
signed-in user that returns what that user may see, or None to leave the row out, and the
template of its row in the posture table. The index shows the rows in ``order``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PosturePanel:
    """One row of the posture table: ``compute(user)`` answers None when the row is not for them."""

    key: str
    order: int
    template: str
    compute: Callable[[Any], Any]


@dataclass(frozen=True)
class PostureRow:
    """A panel's row for one user: its template and what it shows."""

    key: str
    template: str
    value: Any


_panels: dict[str, PosturePanel] = {}


def register_panel(panel: PosturePanel) -> None:
    """Add a panel; registering one key twice with another shape is a bug."""
    existing = _panels.get(panel.key)
    if existing is not None and existing != panel:
        raise ValueError(f"posture panel {panel.key!r} is already registered differently")
    _panels[panel.key] = panel


def posture_for(user) -> list[PostureRow]:
    """The rows the user may see, in order; each panel decides for itself what that is."""
    rows = []
    for panel in sorted(_panels.values(), key=lambda panel: (panel.order, panel.key)):
        value = panel.compute(user)
        if value is not None:
            rows.append(PostureRow(key=panel.key, template=panel.template, value=value))
    return rows
