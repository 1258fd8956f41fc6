"""What a sink receives for one ledger event: OCSF 1.5.0 (JSON) or CEF, and the RFC 5424 syslog
message that carries either.

Every record carries the event's id (``uid``), its ledger sequence, its RFC 9162 leaf index and
leaf hash, and the size of the signed tree head it was read under, so that a SIEM copy can be
checked against the ledger (an inclusion proof for that leaf in that tree).

OCSF classes, by action code (the schema version is pinned: ``OCSF_VERSION``): sign-ins and
sign-outs → Authentication (3002); user accounts → Account Change (3001); grants and roles →
User Access Management (3005); groups → Group Management (3006); governed objects and
quarantine → Entity Management (3004); workflow changes and executions → API Activity (6003).
Anything else → Entity Management (3004) with activity Other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

OCSF_VERSION = "1.5.0"
PRODUCT = {"name": "Governance portal ledger", "vendor_name": "Governance portal", "version": "1"}
# Structured-data id of the ledger's parameters in syslog messages: 32473 is the enterprise
# number RFC 5612 reserves for documentation and examples; operators may set their own.
SD_ID = "ledger@32473"


@dataclass(frozen=True)
class ExportedEvent:
    """One sealed ledger event as the pump reads it, with the tree size it was read under."""

    uid: str
    sequence: int
    leaf_hash: str
    tree_size: int
    occurred_at: datetime
    category: str
    action: str
    outcome: str
    actor_type: str
    actor_id: int | None
    actor_label: str
    organization_id: int | None
    workspace_id: int | None
    target_type: str
    target_id: str
    target_label: str
    request_id: str
    ip: str | None
    user_agent: str
    data: dict[str, Any]

    @property
    def leaf_index(self) -> int:
        """RFC 9162 leaf index (0-based); the ledger's sequence numbers start at 1."""
        return self.sequence - 1

    @property
    def epoch_ms(self) -> int:
        return int(self.occurred_at.timestamp() * 1000)

    def ledger_fields(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "sequence": self.sequence,
            "leaf_index": self.leaf_index,
            "leaf_hash": self.leaf_hash,
            "tree_size": self.tree_size,
        }


# --- OCSF -------------------------------------------------------------------------------------

AUTHENTICATION, ACCOUNT_CHANGE, ENTITY_MANAGEMENT = 3002, 3001, 3004
USER_ACCESS, GROUP_MANAGEMENT, API_ACTIVITY = 3005, 3006, 6003
CLASS_NAMES = {
    AUTHENTICATION: "Authentication",
    ACCOUNT_CHANGE: "Account Change",
    ENTITY_MANAGEMENT: "Entity Management",
    USER_ACCESS: "User Access Management",
    GROUP_MANAGEMENT: "Group Management",
    API_ACTIVITY: "API Activity",
}
CATEGORIES = {3: "Identity & Access Management", 6: "Application Activity"}

# (action code or prefix ending in "."), class, activity id. The first match wins; exact codes
# come before prefixes.
# fmt: off
_CLASSES: tuple[tuple[str, int, int], ...] = (
    ("auth.logout", AUTHENTICATION, 2), ("session.ended", AUTHENTICATION, 2),
    ("session.forced_end", AUTHENTICATION, 2),
    ("login.", AUTHENTICATION, 1), ("auth.", AUTHENTICATION, 1), ("sso.login", AUTHENTICATION, 1),
    ("sso.login_failed", AUTHENTICATION, 1), ("session.started", AUTHENTICATION, 1),
    ("mfa.verified", AUTHENTICATION, 1), ("mfa.failed", AUTHENTICATION, 1),
    ("service_account.authenticated", AUTHENTICATION, 1),
    ("service_account.authentication_failed", AUTHENTICATION, 1),
    ("scim.auth_failed", AUTHENTICATION, 1),
    ("user.created", ACCOUNT_CHANGE, 1), ("scim.user_created", ACCOUNT_CHANGE, 1),
    ("sso.user_provisioned", ACCOUNT_CHANGE, 1), ("user.reactivated", ACCOUNT_CHANGE, 2),
    ("user.password_set", ACCOUNT_CHANGE, 4), ("user.deactivated", ACCOUNT_CHANGE, 5),
    ("scim.user_deactivated", ACCOUNT_CHANGE, 5), ("scim.user_deleted", ACCOUNT_CHANGE, 6),
    ("login.locked_out", ACCOUNT_CHANGE, 9), ("mfa.enrolled", ACCOUNT_CHANGE, 10),
    ("mfa.device_removed", ACCOUNT_CHANGE, 11), ("mfa.reset", ACCOUNT_CHANGE, 11),
    ("user.", ACCOUNT_CHANGE, 99), ("scim.user_", ACCOUNT_CHANGE, 99), ("mfa.", ACCOUNT_CHANGE, 99),
    ("grant.assigned", USER_ACCESS, 1), ("grant.revoked", USER_ACCESS, 2),
    ("membership.created", USER_ACCESS, 1), ("membership.role_changed", USER_ACCESS, 1),
    ("membership.removed", USER_ACCESS, 2),
    ("scim.group_created", GROUP_MANAGEMENT, 6), ("scim.group_deleted", GROUP_MANAGEMENT, 5),
    ("scim.group_", GROUP_MANAGEMENT, 99),
    ("workflow.deactivated", ENTITY_MANAGEMENT, 11), ("halt.raised", ENTITY_MANAGEMENT, 12),
    ("halt.released", ENTITY_MANAGEMENT, 13),
    ("workflow.created", API_ACTIVITY, 1), ("workflow.version.created", API_ACTIVITY, 1),
    ("workflow.", API_ACTIVITY, 3), ("execution.", API_ACTIVITY, 99), ("step.", API_ACTIVITY, 99),
    ("operator.", API_ACTIVITY, 3), ("human_task.", API_ACTIVITY, 99), ("ai.", API_ACTIVITY, 99),
    ("branch.", API_ACTIVITY, 99), ("data.accessed", API_ACTIVITY, 2), ("data.written", API_ACTIVITY, 3),
)
# fmt: on


def ocsf_class_of(action: str) -> tuple[int, int]:
    """(class uid, activity id) of an action code; Entity Management for the rest."""
    for code, class_uid, activity in _CLASSES:
        if action == code or (code.endswith((".", "_")) and action.startswith(code)):
            return class_uid, activity
    if action.endswith(".created"):
        return ENTITY_MANAGEMENT, 1
    if action.endswith((".updated", ".changed", "_changed")):
        return ENTITY_MANAGEMENT, 3
    if action.endswith((".deleted", ".removed", ".revoked")):
        return ENTITY_MANAGEMENT, 4
    return ENTITY_MANAGEMENT, 99


def _status_id(outcome: str) -> int:
    return 1 if outcome == "success" else 2


def _severity_id(event: ExportedEvent) -> int:
    if event.outcome == "denied":
        return 3  # Medium
    if event.outcome == "failed":
        return 2  # Low
    return 1  # Informational


def to_ocsf(event: ExportedEvent) -> dict[str, Any]:
    """The event as an OCSF 1.5.0 record of its class (see the module's text)."""
    class_uid, activity_id = ocsf_class_of(event.action)
    category_uid = class_uid // 1000
    user = {"name": event.actor_label or event.actor_type, "type": event.actor_type}
    if event.actor_id is not None:
        user["uid"] = str(event.actor_id)
    record: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": CLASS_NAMES[class_uid],
        "category_uid": category_uid,
        "category_name": CATEGORIES[category_uid],
        "activity_id": activity_id,
        "type_uid": class_uid * 100 + activity_id,
        "time": event.epoch_ms,
        "severity_id": _severity_id(event),
        "status_id": _status_id(event.outcome),
        "status": "Success" if event.outcome == "success" else "Failure",
        "message": event.action,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": event.uid,
            "correlation_uid": event.request_id or None,
            "product": PRODUCT,
            "sequence": event.sequence,
            "log_name": "ledger",
            "original_time": event.occurred_at.astimezone(UTC).isoformat(),
        },
        "actor": {"user": user},
        "unmapped": {
            "ledger": event.ledger_fields(),
            "action": event.action,
            "category": event.category,
            "outcome": event.outcome,
            "organization_id": event.organization_id,
            "workspace_id": event.workspace_id,
            "target": {"type": event.target_type, "uid": event.target_id, "name": event.target_label},
            "data": event.data,
        },
    }
    if event.ip or event.user_agent:
        endpoint: dict[str, Any] = {}
        if event.ip:
            endpoint["ip"] = event.ip
        record["src_endpoint"] = endpoint
        if event.user_agent:
            record["http_request"] = {"user_agent": event.user_agent}
    target_user = (
        {"name": event.target_label, "uid": event.target_id} if event.target_type.endswith("user") else user
    )
    if class_uid in (AUTHENTICATION, ACCOUNT_CHANGE):
        record["user"] = target_user if class_uid == ACCOUNT_CHANGE else user
    elif class_uid == USER_ACCESS:
        record["user"] = target_user
        role = event.data.get("role") or event.data.get("permission") or event.action
        record["privileges"] = [str(role.get("after") if isinstance(role, dict) else role)]
    elif class_uid == GROUP_MANAGEMENT:
        record["group"] = {"name": event.target_label or event.target_id, "uid": event.target_id}
    elif class_uid == ENTITY_MANAGEMENT:
        record["entity"] = {
            "name": event.target_label or event.action,
            "uid": event.target_id or event.uid,
            "type": event.target_type or "ledger",
        }
    elif class_uid == API_ACTIVITY:
        record["api"] = {"operation": event.action, "service": {"name": "workflows"}}
        record["src_endpoint"] = record.get("src_endpoint") or {"name": "portal"}
    record["metadata"] = {k: v for k, v in record["metadata"].items() if v is not None}
    return record


# --- CEF ------------------------------------------------------------------------------------------


def _cef_header(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _cef_value(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace("=", "\\=").replace("\r\n", "\\n").replace("\n", "\\n")
        .replace("\r", "\\r")
    )  # fmt: skip


_CEF_SEVERITY = {"success": 3, "failed": 5, "denied": 7}


def to_cef(event: ExportedEvent) -> str:
    """``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension`` (ArcSight CEF 25)."""
    extension = {
        "rt": str(event.epoch_ms),
        "externalId": event.uid,
        "cnt": "1",
        "outcome": event.outcome,
        "cat": event.category,
        "suser": event.actor_label,
        "suid": "" if event.actor_id is None else str(event.actor_id),
        "src": event.ip or "",
        "requestClientApplication": event.user_agent,
        "duid": event.target_id,
        "duser": event.target_label,
        "cs1Label": "sequence",
        "cs1": str(event.sequence),
        "cs2Label": "leafIndex",
        "cs2": str(event.leaf_index),
        "cs3Label": "treeSize",
        "cs3": str(event.tree_size),
        "cs4Label": "leafHash",
        "cs4": event.leaf_hash,
        "cs5Label": "targetType",
        "cs5": event.target_type,
        "cs6Label": "data",
        "cs6": json.dumps(event.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    }
    body = " ".join(f"{key}={_cef_value(value)}" for key, value in extension.items() if value != "")
    header = "|".join(
        _cef_header(part)
        for part in (
            "CEF:0",
            PRODUCT["vendor_name"],
            PRODUCT["name"],
            PRODUCT["version"],
            event.action,
            event.action,
            str(_CEF_SEVERITY.get(event.outcome, 3)),
        )
    )
    return f"{header}|{body}"


def render(event: ExportedEvent, fmt: str) -> dict[str, Any] | str:
    """The event in the sink's format: a dict (OCSF) or a line (CEF)."""
    return to_cef(event) if fmt == "cef" else to_ocsf(event)


def as_json_document(event: ExportedEvent, fmt: str) -> dict[str, Any]:
    """A JSON document for JSON sinks: OCSF itself, or the CEF line with the ledger fields."""
    if fmt == "cef":
        return {"message": to_cef(event), "ledger": event.ledger_fields()}
    return to_ocsf(event)


def as_text(event: ExportedEvent, fmt: str) -> str:
    """One line of text: the CEF line, or the OCSF record as compact JSON."""
    if fmt == "cef":
        return to_cef(event)
    return json.dumps(to_ocsf(event), separators=(",", ":"), ensure_ascii=False)


# --- RFC 5424 / RFC 5425 -------------------------------------------------------------------------


def _sd_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_token(text: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most ``limit`` characters, or ``-``."""
    cleaned = "".join(ch for ch in text if 33 <= ord(ch) <= 126)[:limit]
    return cleaned or "-"


def syslog_message(event: ExportedEvent, fmt: str, *, hostname: str, app_name: str = "governance") -> bytes:
    """An RFC 5424 message: facility 13 (log audit); severity from the outcome; MSGID the action;
    the ledger fields as structured data; the message UTF-8 with a BOM."""
    severity = {"success": 6, "failed": 4, "denied": 4}.get(event.outcome, 5)
    pri = 13 * 8 + severity
    timestamp = event.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    params = " ".join(f'{key}="{_sd_value(str(value))}"' for key, value in event.ledger_fields().items())
    header = (
        f"<{pri}>1 {timestamp} {_header_token(hostname, 255)} {_header_token(app_name, 48)} - "
        f"{_header_token(event.action, 32)} [{SD_ID} {params}] "
    )
    return header.encode("ascii") + b"\xef\xbb\xbf" + as_text(event, fmt).encode("utf-8", "replace")


def octet_counted(message: bytes) -> bytes:
    """RFC 5425 framing: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode("ascii") + b" " + message
