"""Template filters that show definitions as readable JSON: pretty-printed, and a step's change
field by field (``"next": null``, ``true`` — JSON as the builder wrote it, never Python's repr)."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()

_ABSENT = object()


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


@register.filter
def as_json(value: Any) -> str:
    """``value`` as pretty-printed JSON (the template escapes it)."""
    return _json(value)


@register.filter
def field_changes(step_change: dict) -> list[dict]:
    """One row per field of a step in a diff: its name, the JSON before and after ("" when the
    field is absent on that side) and its mark, in the step's own field order. A field only after
    is ``added`` (every field of an added step), only before ``removed`` (every field of a removed
    step), on both sides and different ``changed``, else ""."""
    before = step_change.get("before") or {}
    after = step_change.get("after") or {}
    names = list(before) + [name for name in after if name not in before]
    rows = []
    for name in names:
        old, new = before.get(name, _ABSENT), after.get(name, _ABSENT)
        if old is _ABSENT:
            mark = "added"
        elif new is _ABSENT:
            mark = "removed"
        else:
            mark = "changed" if old != new else ""
        rows.append(
            {
                "field": name,
                "before": "" if old is _ABSENT else _json(old),
                "after": "" if new is _ABSENT else _json(new),
                "mark": mark,
            }
        )
    return rows


@register.filter
def approvals_for(approvals, tier_code: str) -> list:
    """The decisions given on one tier of a change."""
    return [approval for approval in approvals or () if approval.tier == tier_code]


@register.filter
def checked(answers, code: str) -> bool:
    """Whether a reviewer ticked checklist item ``code``."""
    return bool(isinstance(answers, dict) and answers.get(code))
