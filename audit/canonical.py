"""The canonical form of a ledger event: what gets hashed, fixed at insert time.

An event's content is a small JSON document; its RFC 8785 (JSON Canonicalization Scheme) bytes
are stored with the row, so verification hashes exactly what was written and never depends on
how a database or a library serialises JSON today.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import rfc8785

FORMAT_VERSION = 1

# Columns whose values the canonical document carries, in the document's own names.
CONTENT_COLUMNS = (
    "uid", "occurred_at", "category", "action", "outcome", "actor_type", "actor_id", "actor_label",
    "organization_id", "workspace_id", "target_type", "target_id", "target_label", "request_id", "ip",
    "user_agent", "data",
)  # fmt: skip


class CanonicalError(ValueError):
    """The event content cannot be put in canonical form (e.g. a float that JSON cannot hold)."""


def format_time(moment: datetime) -> str:
    """UTC, microseconds, 'Z': one spelling for one instant."""
    if moment.tzinfo is None:
        raise CanonicalError("Event times must be timezone-aware.")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content_of(values: dict[str, Any]) -> dict[str, Any]:
    """The canonical document for an event given its column values (see CONTENT_COLUMNS)."""
    return {
        "v": FORMAT_VERSION,
        "uid": str(values["uid"]),
        "occurred_at": format_time(values["occurred_at"]),
        "category": values["category"],
        "action": values["action"],
        "outcome": values["outcome"],
        "actor": {"type": values["actor_type"], "id": values["actor_id"], "label": values["actor_label"]},
        "organization_id": values["organization_id"],
        "workspace_id": values["workspace_id"],
        "target": {"type": values["target_type"], "id": values["target_id"], "label": values["target_label"]},
        "request": {"id": values["request_id"], "ip": values["ip"], "user_agent": values["user_agent"]},
        "data": values["data"],
    }


def canonical_bytes(values: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of the event's content."""
    try:
        return rfc8785.dumps(content_of(values))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as error:
        raise CanonicalError(f"Event content cannot be canonicalised: {error}") from None


def parse(canonical: bytes) -> dict[str, Any]:
    """The document stored in ``canonical`` (for display and for checking the columns)."""
    return json.loads(canonical)
