"""What the AI register and the bias policy tell the changes (through ``workflows.changes.checks``,
filled from the app's ``ready``): a version whose AI step the register refuses, or whose step
deciding about people lacks a current passing bias test, is not approved, applied or activated;
the step editor shows the register's facts beside each AI step."""

from __future__ import annotations

from typing import Any

from workflows.ai.bias import bias_refusal
from workflows.ai.selectors import definition_ai_refusal, register_facts
from workflows.changes.checks import register_definition_check, register_step_facts

AI_REGISTER_REFUSES = "The AI register refuses it: "
BIAS_POLICY_REFUSES = "The bias policy refuses it: "


def register_refusal(workflow, definition: Any) -> str:
    refusal = definition_ai_refusal(workflow.workspace, definition)
    return AI_REGISTER_REFUSES + refusal if refusal else ""


def bias_policy_refusal(workflow, definition: Any) -> str:
    refusal = bias_refusal(workflow=workflow, definition=definition)
    return BIAS_POLICY_REFUSES + refusal if refusal else ""


def ai_step_facts(workspace, step: dict) -> dict | None:
    provider, model = step.get("provider"), step.get("model")
    if not (isinstance(provider, str) and isinstance(model, str) and provider and model):
        return None
    return register_facts(workspace, provider, model)


def register() -> None:
    """Register the checks and the editor's facts (called from the app's ``ready``)."""
    register_definition_check("ai_register", register_refusal)
    register_definition_check("bias_policy", bias_policy_refusal)
    register_step_facts("ai_prompt", ai_step_facts, "workflows/_register_facts.html")
