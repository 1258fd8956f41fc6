"""What an AI step's output must pass before anything acts on it: it parses as JSON, matches the
step's ``output_schema``, satisfies each of the step's business ``validators`` (CEL expressions
over ``output`` that must be true, e.g. ``output.amount <= 500``), and, when the step has
``routes``, names one of the next steps the version allows. The only thing an output can cause is
one of those steps; an output that chooses anything else is refused.

The same check runs on a reviewer's override before it replaces the model's output.

Each problem comes twice: ``problems`` in full (they may quote the output: shown only to the
reviewer, kept encrypted) and ``codes`` that never quote it — where and which rule
(``output.amount: maximum``, ``validator 2: <its author's message>``) — for the ledger, the
decision record and the step's error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from governance.core.text import JsonRefusedError, json_refusal, strict_json_loads
from workflows.changes.definition import input_problem_codes, input_problems
from workflows.executions.expressions import ExpressionError, evaluate

MAX_ANSWER_CHARS = 64 * 1024


@dataclass(frozen=True)
class OutputCheck:
    """``next_step``: where the output leads (when it passed); ``problems``: why it may not be used."""

    value: Any
    next_step: str | None
    problems: list[str] = field(default_factory=list)
    validators: list[dict] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def strict_json(text: str) -> tuple[Any, str]:
    """``(value, "")`` for JSON that PostgreSQL can store (``strict_json_loads``: no NaN, no
    Infinity, no overflow, bounded depth; no NUL or lone surrogate in a string), else
    ``(None, problem)``. The problem never quotes the text."""
    try:
        value = strict_json_loads(text)
    except JsonRefusedError as error:
        return None, f"It is not JSON: {str(error)[0].lower()}{str(error)[1:]}"
    refusal = json_refusal(value)
    if refusal:
        return None, f"It holds text that cannot be stored ({refusal[1].rstrip('.')})."
    return value, ""


def parse_answer(text: str) -> tuple[Any, str]:
    """The JSON value of a model's answer, or ``(None, problem)``."""
    if len(text) > MAX_ANSWER_CHARS:
        return None, f"The model's answer is longer than {MAX_ANSWER_CHARS:,} characters."
    stripped = text.strip()
    if stripped.startswith("```"):  # a fenced block around the JSON: take what is inside
        stripped = stripped.strip("`").removeprefix("json").strip()
    value, problem = strict_json(stripped)
    return (value, "") if not problem else (None, "The model's answer: " + problem[0].lower() + problem[1:])


def check_output(value: Any, step: dict) -> OutputCheck:
    """Every reason ``value`` may not be used as ``step``'s output, and the step it leads to."""
    schema = step.get("output_schema") or {}
    problems = list(input_problems(schema, value, root="output"))
    codes = list(input_problem_codes(schema, value, root="output"))
    results: list[dict] = []
    if not problems:
        for index, validator in enumerate(step.get("validators") or []):
            message = validator.get("message") or f"Validator {index + 1} failed."
            try:
                passed = evaluate(validator["expression"], {"output": value}) is True
            except ExpressionError as error:
                passed, message = False, f"{message} ({error})"
            results.append({"validator": index + 1, "passed": passed})
            if not passed:
                problems.append(message)
                codes.append(f"validator {index + 1}: {validator.get('message') or 'failed'}")
    next_step = step.get("next")
    routes = step.get("routes")
    if routes and not problems:
        chosen = value.get(routes["field"]) if isinstance(value, dict) else None
        allowed = routes.get("next") or {}
        if not isinstance(chosen, str) or chosen not in allowed:
            shown = json.dumps(chosen)[:80]
            problems.append(
                f"The output chose {shown} for {routes['field']!r}; the allowed choices are "
                + ", ".join(sorted(allowed))
                + "."
            )
            codes.append(f"output.{routes['field']}: not one of the routes ({', '.join(sorted(allowed))})")
            next_step = None
        else:
            next_step = allowed[chosen]
    return OutputCheck(value=value, next_step=next_step if not problems else None, problems=problems,
                       validators=results, codes=codes)  # fmt: skip
