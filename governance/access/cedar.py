"""Attribute policies in Cedar: the schema, validation with line numbers, and evaluation.

Roles and grants decide what may be done; Cedar policies only narrow it. Every evaluation
runs the approved ``forbid`` policies on top of one built-in ``permit``, so the answer is
"allowed" unless a policy forbids. Cedar skips a policy whose evaluation errors (a missing
attribute, say); here such an error denies instead, so a missing attribute never opens a door.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from governance.access.actions import ACTIONS

NAMESPACE = "Portal"
RESOURCE_TYPES = ("Workspace", "Workflow", "Integration")
BASELINE = '@id("roles-and-grants")\npermit(principal, action, resource);\n'

_STRING = {"type": "String"}
_BOOL = {"type": "Boolean"}


def _cedar():
    """The Cedar engine, imported on the first policy check rather than at start-up (a management
    command that never decides anything does not load it)."""
    import cedarpy

    return cedarpy


def _optional(kind: dict) -> dict:
    return {**kind, "required": False}


def _entity(attributes: dict) -> dict:
    return {"shape": {"type": "Record", "attributes": attributes}}


CONTEXT = {
    "type": "Record",
    "attributes": {
        "local_time": _STRING,
        "time_zone": _STRING,
        "business_hours": _STRING,
        "within_business_hours": _BOOL,
        "authentication": _optional(_STRING),
        "source_ip": _optional(_STRING),
        "mfa_age_seconds": _optional({"type": "Long"}),
        "privacy_approved": _optional(_BOOL),
        "manager_approved": _optional(_BOOL),
    },
}


@lru_cache(maxsize=1)
def schema() -> dict:
    """The Cedar schema every policy is validated against (JSON form)."""
    workspace_ref = {"type": "Entity", "name": "Workspace"}
    return {
        NAMESPACE: {
            "entityTypes": {
                "User": _entity(
                    {
                        "region": _optional(_STRING),
                        "department": _optional(_STRING),
                        "has_manager": _BOOL,
                        "training_current": _BOOL,
                        "oncall_active": _BOOL,
                    }
                ),
                "Workspace": _entity({"data_region": _STRING, "time_zone": _STRING}),
                "Workflow": _entity(
                    {
                        "workspace": workspace_ref,
                        "data_region": _STRING,
                        "handles_pii": _BOOL,
                        "environment": _STRING,
                    }
                ),
                "Integration": _entity({"workspace": workspace_ref, "sensitivity": _STRING}),
            },
            "actions": {
                code: {
                    "appliesTo": {
                        "principalTypes": ["User"],
                        "resourceTypes": list(RESOURCE_TYPES),
                        "context": CONTEXT,
                    }
                }
                for code in ACTIONS
            },
        }
    }


# --- Validation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyError:
    """A problem in policy text, at a line (1-based) of that text."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Statement:
    """One policy statement of a text, with the line it starts on."""

    source: str
    line: int


def split_statements(text: str) -> list[Statement]:
    """Cut a policy text at top-level semicolons (outside strings, comments and braces)."""
    statements, start, depth, index = [], 0, 0, 0
    in_string = False
    while index < len(text):
        char = text[index]
        if in_string:
            if char == "\\":
                index += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif text.startswith("//", index):
            newline = text.find("\n", index)
            index = len(text) if newline == -1 else newline
            continue
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == ";" and depth <= 0:
            chunk = text[start : index + 1]
            statements.append(Statement(chunk, _first_code_line(text, start)))
            start = index + 1
        index += 1
    rest = text[start:]
    if _strip_comments(rest).strip():
        statements.append(Statement(rest, _first_code_line(text, start)))
    return statements


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def _first_code_line(text: str, offset: int) -> int:
    line = text.count("\n", 0, offset) + 1
    for row in text[offset:].split("\n"):
        if _strip_comments(row).strip():
            return line
        line += 1
    return line


def _token_line(statement: Statement, message: str) -> int:
    """The line of the first name the error quotes (`like this`) found in the statement."""
    code = _strip_comments(statement.source)
    for token in re.findall(r"`([^`]+)`", message):
        if "::" in token or token.startswith("policy"):
            continue
        position = code.rfind(token) if "unexpected token" in message else code.find(token)
        if position >= 0:
            skipped = len(code) - len(code.lstrip())
            return (
                statement.line + code[skipped:position].count("\n") if position >= skipped else statement.line
            )
    return statement.line


MAX_POLICY_TEXT = 32 * 1024
MAX_STATEMENTS = 50


def validate_policy_text(text: str) -> list[PolicyError]:
    """Every problem in ``text`` with its line; an empty list means it may be saved."""
    if len(text) > MAX_POLICY_TEXT:
        return [PolicyError(1, f"The text is {len(text):,} characters; the limit is {MAX_POLICY_TEXT:,}.")]
    statements = split_statements(text)
    if len(statements) > MAX_STATEMENTS:
        return [
            PolicyError(
                statements[MAX_STATEMENTS].line,
                f"At most {MAX_STATEMENTS} policies in one text; split it into several.",
            )
        ]
    if not statements:
        return [PolicyError(1, "The text holds no policy.")]
    errors: list[PolicyError] = []
    for statement in statements:
        result = _cedar().validate_policies(statement.source, schema())
        for error in result.errors:
            errors.append(PolicyError(_token_line(statement, error.error), _plain(error.error)))
        if result.validation_passed and _effect(statement.source) != "forbid":
            errors.append(
                PolicyError(statement.line, "Policies may only forbid; what is allowed comes from roles.")
            )
        if result.validation_passed and not _annotations(statement.source).get("id"):
            errors.append(
                PolicyError(statement.line, 'Give each policy an @id("…") so that denials can name it.')
            )
    return errors


def _plain(message: str) -> str:
    return re.sub(r"for policy `policy\d+`, ", "", message).replace("Policy parse error: ", "cannot parse: ")


def _parsed(source: str) -> dict:
    return next(iter(json.loads(_cedar().policies_to_json_str(source))["staticPolicies"].values()))


def _effect(source: str) -> str:
    return _parsed(source)["effect"]


def _annotations(source: str) -> dict[str, str]:
    return _parsed(source).get("annotations", {})


# --- Evaluation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledPolicies:
    """A parsed policy set and, per Cedar policy id, the portal's policy name and message."""

    policy_set: Any
    names: dict[str, str]
    messages: dict[str, str]


def compile_policies(texts: tuple[tuple[str, str], ...]) -> CompiledPolicies:
    """Compile ``(policy name, text)`` pairs; cached by their content."""
    return _compile(texts)


@lru_cache(maxsize=256)
def _compile(texts: tuple[tuple[str, str], ...]) -> CompiledPolicies:
    statements = [(None, BASELINE)]
    for name, text in texts:
        statements.extend((name, statement.source) for statement in split_statements(text))
    source = "\n".join(body for _, body in statements)
    names, messages = {}, {}
    for index, (name, body) in enumerate(statements):
        annotations = _annotations(body)
        names[f"policy{index}"] = annotations.get("id", name or "roles-and-grants")
        messages[f"policy{index}"] = annotations.get("message", "")
    return CompiledPolicies(_cedar().PolicySet.from_str(source), names, messages)


@dataclass(frozen=True)
class PolicyOutcome:
    """Whether the policies forbid, which ones, and the sentences to show."""

    forbidden: bool
    policies: tuple[str, ...]
    messages: tuple[str, ...]


def uid(kind: str, identifier: Any) -> dict:
    return {"type": f"{NAMESPACE}::{kind}", "id": str(identifier)}


def business_context(*, time_zone: str, start, end, days: str, at: datetime) -> dict:
    """Local time and whether it falls in business hours, in the workspace's own time zone (DST-aware).

    A stored workspace always has a known zone (its field validator); an unknown one can only be a
    rejected form's value on the unsaved object the control panel asks about, so it answers as
    outside business hours (fail closed) instead of failing the page."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    local = at.astimezone(zone or UTC)
    within = (
        zone is not None
        and str(local.isoweekday()) in days
        and start <= local.time().replace(tzinfo=None) < end
    )
    return {
        "local_time": local.strftime("%H:%M"),
        "time_zone": time_zone,
        "business_hours": f"{start:%H:%M}–{end:%H:%M}",
        "within_business_hours": within,
    }


def evaluate(
    compiled: CompiledPolicies,
    *,
    principal: dict,
    action: str,
    resource: dict,
    entities: list[dict],
    context: dict,
    message_values: dict | None = None,
) -> PolicyOutcome:
    """Run the policies for one request. ``entities`` holds the principal, resource and their parents;
    ``message_values`` fills the placeholders of the policies' messages, beside the context."""
    request = {
        "principal": principal,
        "action": uid("Action", action),
        "resource": resource,
        "context": context,
    }
    result = _cedar().is_authorized(request, compiled.policy_set, entities)
    return _outcome(compiled, result, {**context, **(message_values or {})})


def evaluate_batch(
    compiled: CompiledPolicies,
    *,
    principal: dict,
    action: str,
    resources: list[dict],
    entities: list[dict],
    context: dict,
    message_values: list[dict],
) -> list[PolicyOutcome]:
    """``evaluate`` for many resources sharing the principal and context, in one call to Cedar."""
    requests = [
        {"principal": principal, "action": uid("Action", action), "resource": resource, "context": context}
        for resource in resources
    ]
    results = _cedar().is_authorized_batch(requests, compiled.policy_set, entities)
    return [
        _outcome(compiled, result, {**context, **values})
        for result, values in zip(results, message_values, strict=True)
    ]


def _outcome(compiled: CompiledPolicies, result, values: dict) -> PolicyOutcome:
    errors = [str(error) for error in result.diagnostics.errors]
    if errors:
        failing = re.findall(r"policy `(policy\d+)`", " ".join(errors))
        names = tuple(dict.fromkeys(compiled.names.get(p, p) for p in failing)) or ("unknown",)
        return PolicyOutcome(
            True,
            names,
            tuple(
                f"Denied: policy {name} could not be evaluated (a required attribute is missing)"
                for name in names
            ),
        )
    if result.decision == _cedar().Decision.Allow:
        return PolicyOutcome(False, (), ())
    forbidding = [p for p in result.diagnostics.reasons if p in compiled.names and p != "policy0"]
    names = tuple(compiled.names[p] for p in forbidding) or ("default-deny",)
    messages = tuple(_message(compiled, p, values) for p in forbidding) or ("Denied: no policy permits this",)
    return PolicyOutcome(True, names, messages)


def _message(compiled: CompiledPolicies, policy_id: str, context: dict) -> str:
    template = compiled.messages.get(policy_id) or f"Denied by policy {compiled.names[policy_id]}"
    return re.sub(r"\{(\w+)\}", lambda m: str(context.get(m.group(1), "not set")), template)
