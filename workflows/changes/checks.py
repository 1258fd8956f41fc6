"""What other sub-domains of the app say about a definition, asked by the changes without knowing
them: refusals to approve, apply or activate a version (the AI register's and the bias policy's),
and facts the step editor shows beside a step of a given type (the register's facts of an AI
step's model). Each sub-domain fills this at start-up from the app's ``ready``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DefinitionCheck = Callable[[Any, Any], str]  # (workflow, definition) -> refusal ("" when none)
StepFacts = Callable[[Any, dict], dict | None]  # (workspace, step) -> facts to show, or None


@dataclass(frozen=True)
class StepNote:
    """What the editor shows beside a step: ``facts`` rendered by ``template``."""

    template: str
    facts: dict


_checks: dict[str, DefinitionCheck] = {}
_step_facts: dict[str, tuple[StepFacts, str]] = {}


def register_definition_check(key: str, check: DefinitionCheck) -> None:
    """Add a check every version must pass before it is approved, applied or activated."""
    existing = _checks.get(key)
    if existing is not None and existing is not check:
        raise ValueError(f"definition check {key!r} is already registered")
    _checks[key] = check


def definition_refusal(workflow, definition: Any) -> str:
    """Why a version of ``workflow`` with ``definition`` may not be approved, applied or activated
    ("" when no registered check refuses it), each check's whole sentences in turn."""
    return " ".join(
        reason for reason in (check(workflow, definition) for check in _checks.values()) if reason
    )


def register_step_facts(step_type: str, facts: StepFacts, template: str) -> None:
    """Show ``facts(workspace, step)`` beside each step of ``step_type`` in the editor."""
    existing = _step_facts.get(step_type)
    if existing is not None and existing != (facts, template):
        raise ValueError(f"step facts of {step_type!r} are already registered")
    _step_facts[step_type] = (facts, template)


def step_note(workspace, step: dict) -> StepNote | None:
    """The note the editor shows beside ``step`` in ``workspace`` (None: nothing to show)."""
    registered = _step_facts.get(step.get("type"))
    if registered is None:
        return None
    facts, template = registered
    found = facts(workspace, step)
    return StepNote(template, found) if found else None
