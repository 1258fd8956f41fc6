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
    "uid",
    "occurred_at",
    "category",
    "action",
    "outcome",
    "actor_type",
    "actor_id",
    "actor_label",
    "organization_id",
    "workspace_id",
    "target_type",
    "target_id",
    "target_label",
    "request_id",
    "ip",
    "user_agent",
    "data",
)


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
    return canonicalize(content_of(values))


def canonicalize(document: Any) -> bytes:
    """RFC 8785 bytes of ``document``.

    Most events hold only strings, integers, booleans and nulls; for those Python's own (C) JSON
    encoder writes exactly the RFC 8785 bytes (a property test holds it to the reference
    implementation), several times faster. Anything else — floats, integers beyond ±(2^53−1),
    keys beyond the Basic Multilingual Plane, lone surrogates — goes to the reference ``rfc8785``.
    """
    try:
        if _plain(document):
            return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
                "utf-8"
            )
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as error:
        raise CanonicalError(f"Event content cannot be canonicalised: {error}") from None


_SAFE_INTEGER = 2**53 - 1


def _plain_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")  # fails on lone surrogates
    except UnicodeEncodeError:
        return False
    return True


def _plain(value: Any) -> bool:
    """True when Python's encoder and RFC 8785 agree byte for byte on ``value``.

    RFC 8785 sorts keys by UTF-16 code units and Python by code points; the orders differ only
    for characters beyond U+FFFF, so such keys take the reference path.
    """
    if value is None or value is True or value is False:
        return True
    if type(value) is str:
        return _plain_text(value)
    if type(value) is int:
        return -_SAFE_INTEGER <= value <= _SAFE_INTEGER
    if type(value) is dict:
        return all(
            type(key) is str
            and _plain_text(key)
            and (key.isascii() or max(key) < "\U00010000")
            and _plain(item)
            for key, item in value.items()
        )
    if type(value) is list:
        return all(_plain(item) for item in value)
    return False


def parse(canonical: bytes) -> dict[str, Any]:
    """The document stored in ``canonical`` (for display and for checking the columns)."""
    return json.loads(canonical)
