"""A workspace's limits on its AI steps, set by its owners and compliance officers (those who
may halt its runs): the injection risk score from which a decision goes to a person, the model
calls one run may make, and the tokens the workspace may spend in a UTC day. Each change is an
``ai.controls_changed`` ledger event with the values before and after and the reason."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.services import audit_event_record, audited_transaction
from governance.access.decision import require
from governance.core.text import checked_reason
from workflows.events import WorkflowEvent
from workflows.executions.models import AIControls

FIELDS = ("risk_threshold", "max_calls_per_execution", "daily_token_budget")
MAX_CALLS = 1000
MAX_DAILY_TOKENS = 1_000_000_000


def ai_controls_defaults(workspace_id: int) -> AIControls:
    """The controls a workspace has until someone sets its own (not saved)."""
    return AIControls(
        workspace_id=workspace_id,
        risk_threshold=settings.AI_RISK_THRESHOLD,
        max_calls_per_execution=settings.AI_MAX_CALLS_PER_EXECUTION,
        daily_token_budget=settings.AI_DAILY_TOKEN_BUDGET,
    )


def _checked(risk_threshold, max_calls_per_execution, daily_token_budget) -> dict:
    errors = {}
    if not isinstance(risk_threshold, int | float) or not 0 <= float(risk_threshold) <= 1:
        errors["risk_threshold"] = (
            "A number between 0 and 1 (1 sends only the surest injections to a person)."
        )
    if not isinstance(max_calls_per_execution, int) or not 1 <= max_calls_per_execution <= MAX_CALLS:
        errors["max_calls_per_execution"] = f"A whole number from 1 to {MAX_CALLS:,}."
    if not isinstance(daily_token_budget, int) or not 1 <= daily_token_budget <= MAX_DAILY_TOKENS:
        errors["daily_token_budget"] = f"A whole number from 1 to {MAX_DAILY_TOKENS:,}."
    if errors:
        raise ValidationError(errors)
    return {
        "risk_threshold": float(risk_threshold),
        "max_calls_per_execution": max_calls_per_execution,
        "daily_token_budget": daily_token_budget,
    }


def ai_controls_set(
    *,
    actor,
    workspace,
    risk_threshold: float,
    max_calls_per_execution: int,
    daily_token_budget: int,
    reason: str,
) -> AIControls:
    """Set the workspace's AI limits, with a reason; recorded with what they were before."""
    values = _checked(risk_threshold, max_calls_per_execution, daily_token_budget)
    reason = checked_reason(reason, field="reason")
    with audited_transaction():
        require(actor, "execution.halt", workspace, fresh=True)
        controls = AIControls.objects.select_for_update().filter(workspace=workspace).first()
        before = {name: getattr(controls or ai_controls_defaults(workspace.pk), name) for name in FIELDS}
        if controls is None:
            controls = AIControls(workspace=workspace)
        for name, value in values.items():
            setattr(controls, name, value)
        controls.updated_by, controls.updated_at = actor, timezone.now()
        controls.save()
        audit_event_record(
            action=WorkflowEvent.AI_CONTROLS_CHANGED,
            actor=actor,
            target=controls,
            organization_id=workspace.organization_id,
            workspace_id=workspace.pk,
            data={"before": before, "after": values, "reason": reason},
        )
    return controls
