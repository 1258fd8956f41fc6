"""Bias testing of workflows that make decisions about people.

An ``ai_prompt`` step marked ``decides_about_people`` may be approved and applied only while a
passing, current ``BiasTest`` of its model in that workflow is on record: the policy is
``bias_refusal``, which the change approval and apply paths ask beside the AI register. Compliance
officers record tests (``bias_test_record``); each is an ``ai.bias_test_recorded`` ledger event.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.services import audit_event_record, audited_transaction
from governance.access.decision import require
from governance.core.text import checked_reason, identifier_refusal
from workflows.ai.models import BiasMetric, BiasTest
from workflows.events import WorkflowEvent

VALIDITY_DAYS = 365
MAX_ATTRIBUTES = 20


def people_steps(definition: Any) -> list[dict]:
    """The ``ai_prompt`` steps of ``definition`` that make decisions about people."""
    steps = definition.get("steps") if isinstance(definition, dict) else None
    return [
        step
        for step in steps or []
        if isinstance(step, dict)
        and step.get("type") == "ai_prompt"
        and step.get("decides_about_people") is True
    ]


def current_bias_test(*, workflow, provider: str, model: str, on: date) -> BiasTest | None:
    """The latest test of ``provider``/``model`` in ``workflow`` still valid on ``on``."""
    return (
        BiasTest.objects.filter(workflow=workflow, provider=provider, model=model, tested_on__lte=on)
        .order_by("-tested_on", "-id")
        .first()
    )


def bias_refusal(*, workflow, definition: Any, on: date | None = None) -> str:
    """Why ``definition`` may not be approved or applied for ``workflow`` by the bias policy ("" when it may)."""
    on = on or timezone.now().date()
    reasons = []
    for step in people_steps(definition):
        found = current_bias_test(workflow=workflow, provider=step["provider"], model=step["model"], on=on)
        name = f"{step['provider']}/{step['model']}"
        if found is None:
            reasons.append(
                f"Step {step['id']!r} decides about people: no bias test of {name} in this workflow is on record."
            )
        elif found.valid_until < on:
            reasons.append(
                f"Step {step['id']!r} decides about people: the bias test of {name} ran out on {found.valid_until}."
            )
        elif not found.passed:
            reasons.append(
                f"Step {step['id']!r} decides about people: the latest bias test of {name} failed "
                f"({found.get_metric_display()} {found.value:.2f} below {found.threshold:.2f})."
            )
    return " ".join(reasons)


CHECKED_FIELDS = (
    "provider", "model", "dataset_reference", "protected_attributes", "metric", "value", "threshold", "tested_on",
)  # fmt: skip


def bias_values_checked(**values) -> dict:
    """A bias test's values, or a ``ValidationError`` with an error per field."""
    errors: dict[str, str] = {}
    for field in ("provider", "model", "dataset_reference"):
        text = values[field]
        if not isinstance(text, str) or not text.strip():
            errors[field] = "Required."
        elif identifier_refusal(text):
            errors[field] = identifier_refusal(text)
        elif len(text) > (500 if field == "dataset_reference" else 100):
            errors[field] = "Too long."
    attributes = values["protected_attributes"]
    if (
        not isinstance(attributes, list | tuple)
        or not attributes
        or len(attributes) > MAX_ATTRIBUTES
        or not all(
            isinstance(a, str) and a.strip() and len(a) <= 60 and not identifier_refusal(a)
            for a in attributes
        )
    ):
        errors["protected_attributes"] = (
            f"Name 1 to {MAX_ATTRIBUTES} protected attributes (e.g. sex, age band)."
        )
    if values["metric"] not in BiasMetric.values:
        errors["metric"] = "Choose a metric."
    for field, low in (("value", 0.0), ("threshold", 0.0)):
        number = values[field]
        if (
            not isinstance(number, int | float)
            or not low <= float(number) <= 1
            or (field == "threshold" and not number)
        ):
            errors[field] = "A ratio between 0 and 1."
    if not isinstance(values["tested_on"], date) or values["tested_on"] > timezone.now().date():
        errors["tested_on"] = "The day the test ran (not in the future)."
    if errors:
        raise ValidationError(errors)
    return values


def bias_test_record(
    *,
    actor,
    workflow,
    provider: str,
    model: str,
    model_version: str = "",
    dataset_reference: str,
    protected_attributes: list[str],
    metric: str,
    value: float,
    threshold: float,
    tested_on: date,
    notes: str = "",
) -> BiasTest:
    """Record a bias test reviewed by ``actor`` (a compliance officer); passed when ``value``
    reaches ``threshold``; valid for a year from ``tested_on``."""
    bias_values_checked(
        provider=provider, model=model, dataset_reference=dataset_reference, protected_attributes=protected_attributes,
        metric=metric, value=value, threshold=threshold, tested_on=tested_on,
    )  # fmt: skip
    notes = checked_reason(notes, field="notes", required=False)
    with audited_transaction():
        require(actor, "ai_register.manage", workflow, fresh=True)
        test = BiasTest.objects.create(
            workspace_id=workflow.workspace_id, workflow=workflow, provider=provider.strip(), model=model.strip(),
            model_version=(model_version or "").strip()[:100], dataset_reference=dataset_reference.strip(),
            protected_attributes=[a.strip() for a in protected_attributes], metric=metric, value=float(value),
            threshold=float(threshold), passed=float(value) >= float(threshold), reviewer=actor, tested_on=tested_on,
            valid_until=tested_on + timedelta(days=VALIDITY_DAYS), notes=notes,
        )  # fmt: skip
        audit_event_record(
            action=WorkflowEvent.AI_BIAS_TEST_RECORDED,
            actor=actor,
            target=test,
            organization_id=workflow.workspace.organization_id,
            workspace_id=workflow.workspace_id,
            data={
                "workflow": workflow.pk, "provider": test.provider, "model": test.model,
                "model_version": test.model_version, "dataset_reference": test.dataset_reference,
                "protected_attributes": test.protected_attributes, "metric": metric, "value": test.value,
                "threshold": test.threshold, "passed": test.passed, "tested_on": tested_on,
                "valid_until": test.valid_until,
            },
        )  # fmt: skip
    return test
