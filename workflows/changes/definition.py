"""Workflow definitions: the published JSON Schema, the checks it cannot express, and diffs.

A definition is ``{"trigger": {...}, "steps": [...]}``. Steps run from the first one; each names
the step that follows (``next``) or, for a branch, the steps for each outcome (``then``/``else``).
Errors come back keyed by the JSON path of the field that is wrong (``steps[2].integration``), so
forms and the API show them where they belong.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import rfc8785

from governance.core.text import json_refusal
from workflows.changes.schedule import cron_problem

if TYPE_CHECKING:
    import jsonschema

MAX_DEFINITION_BYTES = 64 * 1024
MAX_STEPS = 100
# A webhook trigger's path: the URL part after /hooks/<workspace>/ (ASCII only, so it reads as it is).
WEBHOOK_PATH_PATTERN = r"^/[A-Za-z0-9/_-]{1,100}$"
STEP_TYPES = ("http_request", "transform", "branch", "ai_prompt", "human_approval")
BODY_METHODS = ("POST", "PUT", "PATCH")  # the methods whose http_request step may send a body

_ID = {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,39}$"}
_NEXT = {"type": ["string", "null"]}


def _step(type_name: str, properties: dict, required: list[str]) -> dict:
    return {
        "type": "object",
        "properties": {
            "id": _ID,
            "type": {"const": type_name},
            "name": {"type": "string", "maxLength": 120},
            **properties,
        },
        "required": ["id", "type", *required],
        "additionalProperties": False,
    }


SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://governance-portal.invalid/schemas/workflow-definition-1.json",
    "title": "Workflow definition",
    "type": "object",
    "required": ["trigger", "steps"],
    "additionalProperties": False,
    "properties": {
        # What a run's input must look like (a JSON Schema, checked at every trigger).
        "input_schema": {"type": "object"},
        "trigger": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"type": {"const": "manual"}},
                    "required": ["type"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": "schedule"},
                        "cron": {"type": "string", "pattern": r"^(\S+\s+){4}\S+$"},
                    },
                    "required": ["type", "cron"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": "webhook"},
                        "path": {"type": "string", "pattern": WEBHOOK_PATH_PATTERN},
                    },
                    "required": ["type", "path"],
                    "additionalProperties": False,
                },
            ]
        },
        "steps": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_STEPS,
            "items": {
                "type": "object",
                "required": ["id", "type"],
                "properties": {"type": {"enum": list(STEP_TYPES)}},
                "allOf": [
                    {
                        "if": {"properties": {"type": {"const": "http_request"}}},
                        "then": _step(
                            "http_request",
                            {
                                "integration": {"type": "string", "minLength": 1},
                                "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
                                "path": {"type": "string", "pattern": "^/", "maxLength": 500},
                                # What a POST, PUT or PATCH sends: a CEL expression, sent as JSON.
                                "body": {"type": "string", "minLength": 1, "maxLength": 4000},
                                "next": _NEXT,
                            },
                            ["integration", "method", "path"],
                        ),
                    },
                    {
                        "if": {"properties": {"type": {"const": "transform"}}},
                        "then": _step(
                            "transform",
                            {
                                "expression": {"type": "string", "minLength": 1, "maxLength": 4000},
                                "next": _NEXT,
                            },
                            ["expression"],
                        ),
                    },
                    {
                        "if": {"properties": {"type": {"const": "branch"}}},
                        "then": _step(
                            "branch",
                            {
                                "condition": {"type": "string", "minLength": 1, "maxLength": 1000},
                                "then": {"type": "string"},
                                "else": {"type": "string"},
                            },
                            ["condition", "then", "else"],
                        ),
                    },
                    {
                        "if": {"properties": {"type": {"const": "ai_prompt"}}},
                        "then": _step(
                            "ai_prompt",
                            {
                                # A provider and a model of the organisation's AI register.
                                "provider": {"type": "string", "minLength": 1, "maxLength": 100},
                                "model": {"type": "string", "minLength": 1, "maxLength": 100},
                                # The instructions (system prompt) and the template; the run's
                                # data goes only into the user message's delimited data slot.
                                "system": {"type": "string", "minLength": 1, "maxLength": 8000},
                                "prompt": {"type": "string", "minLength": 1, "maxLength": 20000},
                                # What the data slot holds: a CEL expression (the run's input by default).
                                "data": {"type": "string", "minLength": 1, "maxLength": 4000},
                                "output_schema": {"type": "object"},
                                "validators": {
                                    "type": "array",
                                    "maxItems": 20,
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "expression": {
                                                "type": "string",
                                                "minLength": 1,
                                                "maxLength": 4000,
                                            },
                                            "message": {"type": "string", "minLength": 1, "maxLength": 300},
                                        },
                                        "required": ["expression", "message"],
                                        "additionalProperties": False,
                                    },
                                },
                                # The next steps an output may choose, by the value of one field.
                                "routes": {
                                    "type": "object",
                                    "properties": {
                                        "field": {"type": "string", "minLength": 1, "maxLength": 100},
                                        "next": {
                                            "type": "object",
                                            "minProperties": 1,
                                            "maxProperties": 20,
                                            "additionalProperties": _NEXT,
                                        },
                                    },
                                    "required": ["field", "next"],
                                    "additionalProperties": False,
                                },
                                "impact": {"enum": ["low", "high"]},
                                # Decisions about people: approved and applied only with a current,
                                # passing bias test of the model in this workflow.
                                "decides_about_people": {"type": "boolean"},
                                "reviewer_role": {"type": "string", "minLength": 1, "maxLength": 40},
                                "review_hours": {"type": "integer", "minimum": 1, "maximum": 720},
                                "guardrails": {
                                    "type": "object",
                                    "properties": {
                                        "redact_pii": {"type": "boolean"},
                                        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 100000},
                                        "human_review": {"type": "boolean"},
                                        "url_allow": {
                                            "type": "array",
                                            "maxItems": 50,
                                            "items": {"type": "string", "minLength": 1, "maxLength": 253},
                                        },
                                    },
                                    "additionalProperties": False,
                                },
                                "next": _NEXT,
                            },
                            ["provider", "model", "prompt", "output_schema", "guardrails"],
                        ),
                    },
                    {
                        "if": {"properties": {"type": {"const": "human_approval"}}},
                        "then": _step(
                            "human_approval",
                            {
                                "approver_role": {"type": "string", "minLength": 1, "maxLength": 40},
                                "timeout_hours": {"type": "integer", "minimum": 1, "maximum": 720},
                                "on_timeout": {"enum": ["reject", "approve"]},
                                "next": _NEXT,
                            },
                            ["approver_role"],
                        ),
                    },
                ],
            },
        },
    },
}


@cache
def _validator() -> jsonschema.Draft202012Validator:
    """The schema's validator, built on first use: ``jsonschema`` takes a tenth of a second to
    import, which no management command that does not validate a definition should pay."""
    import jsonschema

    return jsonschema.Draft202012Validator(SCHEMA)


@dataclass(frozen=True)
class DefinitionError:
    """One problem, at a JSON path such as ``steps[2].integration`` (empty for the whole)."""

    path: str
    message: str


def _path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate_definition(
    definition: Any, *, integrations: dict[str, Any], deciding_roles: frozenset[str] | None = None
) -> list[DefinitionError]:
    """Every problem of ``definition``; ``integrations`` maps the workspace's integration slugs,
    ``deciding_roles`` are the roles that may decide a run's tasks (None: not checked)."""
    unstorable = json_refusal(definition)
    if unstorable:  # NUL or an unpaired surrogate: PostgreSQL's jsonb cannot hold it
        return [DefinitionError(*unstorable)]
    try:
        size = len(rfc8785.dumps(definition))
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        return [DefinitionError("", "The definition holds values that JSON cannot represent exactly.")]
    if size > MAX_DEFINITION_BYTES:
        return [
            DefinitionError("", f"The definition is {size:,} bytes; the limit is {MAX_DEFINITION_BYTES:,}.")
        ]
    trigger_errors = _trigger_errors(definition.get("trigger") if isinstance(definition, dict) else None)
    errors = [
        DefinitionError(_path(error.absolute_path), _schema_message(error))
        for error in _validator().iter_errors(definition)
        # A trigger's own problems are said field by field below, not as "one of three shapes".
        if not (trigger_errors and list(error.absolute_path)[:1] == ["trigger"])
    ]
    errors += trigger_errors
    if errors:
        return sorted(set(errors), key=lambda e: e.path)
    errors += input_schema_errors(definition.get("input_schema"))
    steps = definition["steps"]
    ids: dict[str, int] = {}
    for index, step in enumerate(steps):
        if step["id"] in ids:
            errors.append(DefinitionError(f"steps[{index}].id", f"Step id {step['id']!r} is used twice."))
        ids.setdefault(step["id"], index)
    for index, step in enumerate(steps):
        for key in ("next", "then", "else"):
            target = step.get(key)
            if target is not None and target not in ids:
                errors.append(DefinitionError(f"steps[{index}].{key}", f"No step has the id {target!r}."))
        for choice, target in ((step.get("routes") or {}).get("next") or {}).items():
            if target is not None and target not in ids:
                errors.append(
                    DefinitionError(f"steps[{index}].routes.next.{choice}", f"No step has the id {target!r}.")
                )
        role_key = {"human_approval": "approver_role", "ai_prompt": "reviewer_role"}.get(step.get("type"))
        role = step.get(role_key) if role_key else None
        if deciding_roles is not None and isinstance(role, str) and role not in deciding_roles:
            errors.append(
                DefinitionError(
                    f"steps[{index}].{role_key}",
                    f"The role {role!r} may not decide a run's tasks; choose one of: "
                    + ", ".join(sorted(deciding_roles))
                    + ".",
                )
            )
        if step.get("type") == "http_request" and "body" in step and step.get("method") not in BODY_METHODS:
            errors.append(
                DefinitionError(
                    f"steps[{index}].body",
                    f"A {step.get('method')} request sends no body: only POST, PUT and PATCH do.",
                )
            )
        if step.get("type") == "ai_prompt":
            errors += input_schema_errors(step.get("output_schema"), name=f"steps[{index}].output_schema")
        for key in ("integration",):
            slug = step.get(key)
            if slug is not None and slug not in integrations:
                errors.append(
                    DefinitionError(
                        f"steps[{index}].{key}", f"{slug!r} is not an integration of this workspace."
                    )
                )
    if not errors:
        cycle = _find_cycle(steps)
        if cycle:
            errors.append(
                DefinitionError(
                    f"steps[{ids[cycle[0]]}]", "The steps loop: " + " → ".join([*cycle, cycle[0]]) + "."
                )
            )
    return errors


# Keywords an input schema may not use. Input comes from outside (a webhook's caller), so checking
# it must cost at most a pass over it: no regular expressions (they can backtrack for ever), no
# references (a schema that refers to itself recurses without end), no ``uniqueItems`` (pairwise
# comparisons, quadratic in the array). Nesting is capped too, so that ``anyOf`` inside ``anyOf``
# cannot multiply the work.
_UNSAFE_SCHEMA_KEYWORDS = frozenset(
    {
        "pattern",
        "patternProperties",
        "$ref",
        "$dynamicRef",
        "$recursiveRef",
        "$defs",
        "definitions",
        "$anchor",
        "$dynamicAnchor",
        "uniqueItems",
    }
)
MAX_SCHEMA_DEPTH = 8
MAX_SCHEMA_NODES = 500


def input_schema_errors(schema: Any, *, name: str = "input_schema") -> list[DefinitionError]:
    """The problems of a definition's ``input_schema`` or an AI step's ``output_schema`` (absent is fine)."""
    label = "output schema" if name.endswith("output_schema") else "input schema"
    if schema is None:
        return []
    if not isinstance(schema, dict):
        return [DefinitionError(name, f"The {label} must be a JSON object.")]
    stack, nodes = [(schema, 0)], 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > 2 * MAX_SCHEMA_DEPTH or nodes > MAX_SCHEMA_NODES:
            return [
                DefinitionError(
                    name,
                    f"The {label} is too deep or too large (at most {MAX_SCHEMA_DEPTH} levels of "
                    f"subschemas, {MAX_SCHEMA_NODES} parts).",
                )
            ]
        if isinstance(node, dict):
            used = _UNSAFE_SCHEMA_KEYWORDS & node.keys()
            if used:
                return [DefinitionError(name, f"{sorted(used)[0]!r} is not allowed in an {label}.")]
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
    import jsonschema  # on first use (see ``_validator``)

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        return [DefinitionError(name, f"Not a valid JSON Schema: {error.message}")]
    return []


def input_problems(schema: dict | None, payload: Any, *, limit: int = 5, root: str = "input") -> list[str]:
    """Where ``payload`` breaks the version's input schema (or an AI step's output schema, with
    ``root="output"``), one sentence each (at most ``limit``)."""
    if not schema:
        return []
    import jsonschema  # on first use (see ``_validator``)

    validator = jsonschema.Draft202012Validator(schema)
    try:
        found = sorted(validator.iter_errors(payload), key=lambda error: list(error.absolute_path))
    except RecursionError:
        return [f"{root}: nested too deep to check."]
    # The schema's own words (its errors quote the value, cut short), or the editor's for lengths.
    return [
        f"{_path([root, *error.absolute_path])}: "
        + (_schema_message(error) if error.validator in ("maxLength", "maxItems") else error.message[:200])
        for error in found[:limit]
    ]


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def input_problem_codes(
    schema: dict | None, payload: Any, *, limit: int = 5, root: str = "input"
) -> list[str]:
    """Where ``payload`` breaks ``schema`` and which rule, never quoting it: ``output.amount:
    maximum``. A key of the payload that is not a plain identifier reads ``…`` (it could be data)."""
    if not schema:
        return []
    import jsonschema  # on first use (see ``_validator``)

    validator = jsonschema.Draft202012Validator(schema)
    try:
        found = sorted(validator.iter_errors(payload), key=lambda error: list(error.absolute_path))
    except RecursionError:
        return [f"{root}: depth"]
    codes = []
    for error in found[:limit]:
        parts = [
            part if isinstance(part, int) or _PLAIN_KEY.fullmatch(str(part)) else "…"
            for part in error.absolute_path
        ]
        codes.append(f"{_path([root, *parts])}: {error.validator}")
    return codes


TRIGGER_TYPES = ("manual", "schedule", "webhook")


def _trigger_errors(trigger: Any) -> list[DefinitionError]:
    """The problems of a trigger that names a known shape, field by field: a schedule's cron
    checked by the scheduler's parser, a webhook's path present."""
    if not isinstance(trigger, dict):
        return []
    kind = trigger.get("type")
    if kind not in TRIGGER_TYPES:
        if isinstance(kind, str):
            return [
                DefinitionError(
                    "trigger.type", f"Unknown trigger type {kind[:40]!r}; use manual, schedule or webhook."
                )
            ]
        return []
    if kind == "schedule":
        cron = trigger.get("cron")
        problem = (
            cron_problem(cron)
            if isinstance(cron, str)
            else "A schedule needs a cron expression, e.g. 0 6 * * 1-5."
        )
        return [DefinitionError("trigger.cron", problem)] if problem else []
    if kind == "webhook":
        path = trigger.get("path")
        if not (isinstance(path, str) and path.strip()):
            return [DefinitionError("trigger.path", "A webhook needs a path, e.g. /tickets.")]
        if not re.fullmatch(WEBHOOK_PATH_PATTERN, path):
            return [
                DefinitionError(
                    "trigger.path",
                    "A webhook path starts with / and holds at most 100 letters (A–Z, a–z), digits, "
                    "/, _ and -, e.g. /tickets.",
                )
            ]
    return []


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "maxLength":
        return f"Too long: at most {error.validator_value:,} characters."
    if error.validator == "maxItems":
        return f"Too many: at most {error.validator_value} items."
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "Unknown field(s)")
    if error.validator == "enum" and error.absolute_path and error.absolute_path[-1] == "type":
        return f"Unknown step type {error.instance!r}; use one of {', '.join(STEP_TYPES)}."
    if error.validator == "oneOf" and list(error.absolute_path) == ["trigger"]:
        return "The trigger must be manual, schedule (with cron) or webhook (with path)."
    return error.message


def _successors(step: dict) -> list[str]:
    routed = [target for target in ((step.get("routes") or {}).get("next") or {}).values() if target]
    return [step[key] for key in ("next", "then", "else") if step.get(key)] + routed


def _find_cycle(steps: list[dict]) -> list[str] | None:
    by_id = {step["id"]: step for step in steps}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(step_id: str) -> list[str] | None:
        state[step_id] = 1
        path.append(step_id)
        for successor in _successors(by_id[step_id]):
            if state.get(successor) == 1:
                return path[path.index(successor) :]
            if successor not in state:
                found = visit(successor)
                if found:
                    return found
        path.pop()
        state[step_id] = 2
        return None

    for step in steps:
        if step["id"] not in state:
            found = visit(step["id"])
            if found:
                return found
    return None


def content_hash(definition: dict) -> str:
    """SHA-256 of the definition's RFC 8785 bytes: equal definitions, equal hashes."""
    return hashlib.sha256(rfc8785.dumps(definition)).hexdigest()


def schema_json() -> str:
    """The published schema (served at /workflows/schema.json and in docs/workflows.md)."""
    return json.dumps(SCHEMA, indent=2)


# --- Diffs ---------------------------------------------------------------------------------------


def diff_definitions(before: dict | None, after: dict) -> dict[str, Any]:
    """What changed from ``before`` (None for a new workflow) to ``after``, step by step."""
    old_steps = {s["id"]: s for s in (before or {}).get("steps", [])}
    new_steps = {s["id"]: s for s in after["steps"]}
    changes: list[dict] = []
    for step_id, step in new_steps.items():
        old = old_steps.get(step_id)
        if old is None:
            changes.append({"step": step_id, "kind": "added", "type": step["type"], "after": step})
        elif old != step:
            fields = sorted(k for k in set(old) | set(step) if old.get(k) != step.get(k))
            changes.append(
                {
                    "step": step_id,
                    "kind": "changed",
                    "type": step["type"],
                    "fields": fields,
                    "before": old,
                    "after": step,
                }
            )
    for step_id, step in old_steps.items():
        if step_id not in new_steps:
            changes.append({"step": step_id, "kind": "removed", "type": step["type"], "before": step})
    order = [s["id"] for s in after["steps"]] + [s for s in old_steps if s not in new_steps]
    changes.sort(key=lambda c: order.index(c["step"]))
    trigger_before = (before or {}).get("trigger")
    return {
        "new_workflow": before is None,
        "trigger": None
        if trigger_before == after["trigger"]
        else {"before": trigger_before, "after": after["trigger"]},
        "steps": changes,
        "order_changed": before is not None
        and [s["id"] for s in before["steps"] if s["id"] in new_steps]
        != [s["id"] for s in after["steps"] if s["id"] in old_steps],
    }
