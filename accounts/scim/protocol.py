"""The SCIM wire format (RFC 7643/7644): schema URNs, errors, filters, paging and PATCH paths.

Everything an identity provider sends is checked here before a service sees it; anything
malformed becomes a ``ScimError`` (status, scimType, detail), never an exception of ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from governance.core.text import TextRefusalError, json_refusal, normalise_identifier, text_refusal

CONTENT_TYPE = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_BODY_BYTES = 1024 * 1024
MAX_COUNT = 200
MAX_OPERATIONS = 100
MAX_MEMBERS = 1000


class ScimError(Exception):
    """A SCIM error response: HTTP ``status``, optional ``scim_type`` (RFC 7644 §3.12), ``detail``."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type

    def body(self) -> dict[str, Any]:
        body = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def invalid(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


# --- Values ---------------------------------------------------------------------------------------


def as_string(value: Any, name: str, *, max_length: int = 255, required: bool = False) -> str:
    """A string attribute (None is empty unless required); anything else is an invalidValue."""
    if value is None:
        if required:
            raise invalid(f"'{name}' is required.")
        return ""
    if not isinstance(value, str):
        raise invalid(f"'{name}' must be a string.")
    refusal = text_refusal(value)
    if refusal:
        raise invalid(f"'{name}': {refusal}")
    value = value.strip()
    if required and not value:
        raise invalid(f"'{name}' is required.")
    if len(value) > max_length:
        raise invalid(f"'{name}' must be at most {max_length} characters.")
    return value


def as_identifier(value: Any, name: str, *, max_length: int = 255) -> str:
    """A required string that names an account (``userName``): NFKC-normalised, an invisible,
    format or control character refused (``governance.core.text``)."""
    value = as_string(value, name, max_length=max_length, required=True)
    try:
        return normalise_identifier(value)
    except TextRefusalError as refused:
        raise invalid(f"'{name}': {refused.message}") from None


def refuse_unstorable_text(document: Any) -> None:
    """An invalidValue naming the attribute (its path in the document) if any string of the
    request body, keys included, holds NUL or an unpaired surrogate: checked once for the whole
    body, so no attribute's handling can forget it."""
    found = json_refusal(document)
    if found:
        path, reason = found
        raise invalid(f"'{path}': {reason}" if path else reason)


def as_boolean(value: Any, name: str) -> bool:
    """A boolean; the strings "true"/"false" too, which some identity providers send."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid(f"'{name}' must be a boolean.")


def as_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"{what} must be a JSON object.")
    return value


# --- Filters and paging ---------------------------------------------------------------------------

_FILTER = re.compile(r'^\s*([A-Za-z][\w.:-]*)\s+(eq)\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


@dataclass(frozen=True)
class EqualityFilter:
    """``attribute eq "value"``: the one filter form identity providers use to find a resource."""

    attribute: str  # lower case, as the caller's list of supported attributes names it
    value: str


def parse_filter(text: str | None, supported: tuple[str, ...]) -> EqualityFilter | None:
    """Parse ``filter``; only ``<attribute> eq "<value>"`` on ``supported`` attributes is accepted."""
    if text is None or not text.strip():
        return None
    if len(text) > 1000:
        raise ScimError(400, "The filter is too long.", "invalidFilter")
    match = _FILTER.match(text)
    if match is None:
        raise ScimError(400, 'Only filters of the form attribute eq "value" are supported.', "invalidFilter")
    attribute = match[1].lower()
    if attribute not in supported:
        names = ", ".join(supported)
        raise ScimError(400, f"Filtering is supported on {names} only.", "invalidFilter")
    value = re.sub(r"\\(.)", r"\1", match[3])
    refusal = text_refusal(value)
    if refusal:
        raise ScimError(400, f"The filter value: {refusal}", "invalidFilter")
    return EqualityFilter(attribute, value)


def parse_paging(params) -> tuple[int, int]:
    """``startIndex`` (1-based; below 1 counts as 1) and ``count`` (0 to MAX_COUNT)."""

    def number(name: str, default: int) -> int:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise invalid(f"'{name}' must be an integer.") from None

    start = max(1, number("startIndex", 1))
    count = min(MAX_COUNT, max(0, number("count", MAX_COUNT)))
    return min(start, 2**31), count


def list_response(resources: list[dict], total: int, start: int) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


# --- PATCH ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchOperation:
    """One operation of a PatchOp request: ``op`` in lower case, ``path`` as sent (may be empty)."""

    op: str
    path: str
    value: Any


def parse_patch(body: Any) -> list[PatchOperation]:
    """Check a PatchOp body and return its operations (ops are case-insensitive, as Entra sends them)."""
    body = as_object(body, "The request body")
    schemas = body.get("schemas")
    if schemas is not None and (not isinstance(schemas, list) or PATCH_SCHEMA not in schemas):
        raise invalid(f"'schemas' must name {PATCH_SCHEMA}.")
    operations = body.get("Operations", body.get("operations"))
    if not isinstance(operations, list) or not operations:
        raise invalid("'Operations' must be a non-empty list.")
    if len(operations) > MAX_OPERATIONS:
        raise ScimError(413, f"At most {MAX_OPERATIONS} operations per request.", "tooMany")
    parsed = []
    for operation in operations:
        operation = as_object(operation, "Each operation")
        op = operation.get("op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise invalid("'op' must be add, replace or remove.")
        path = operation.get("path", "")
        if path is None:
            path = ""
        if not isinstance(path, str) or len(path) > 500 or not path.isprintable():
            raise ScimError(
                400, "'path' must be a printable string of at most 500 characters.", "invalidPath"
            )
        if op.lower() != "remove" and "value" not in operation:
            raise invalid(f"'{op}' needs a 'value'.")
        if not path.strip() and op.lower() == "remove":
            raise ScimError(400, "'remove' needs a 'path'.", "noTarget")
        if not path.strip() and not isinstance(operation["value"], dict):
            raise invalid("Without a 'path', the 'value' must be an object of attributes.")
        parsed.append(PatchOperation(op.lower(), path.strip(), operation.get("value")))
    return parsed


_MEMBER_FILTER = re.compile(r'^members\[\s*value\s+eq\s+"([^"]*)"\s*\]$', re.IGNORECASE)


def member_filter_value(path: str) -> str | None:
    """The id in ``members[value eq "<id>"]`` (Okta's way to remove one member), or None."""
    match = _MEMBER_FILTER.match(path)
    return match[1] if match else None
