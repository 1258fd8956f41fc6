"""Changes of the AI register: one compliance officer proposes, another approves or rejects.

``register_change_propose`` checks the proposed state field by field (the same checks the control
panel's forms show) and records ``ai_register.change_proposed``; ``register_change_approve`` —
never by the proposer, superusers included — checks it again against the register as it is now,
writes the provider or model and records ``ai_register.change_approved`` and
``ai_register.change_applied`` (with the fields before and after) in the same transaction;
``register_change_reject`` records ``ai_register.change_rejected``."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.services import audit_event_record, audited_transaction, diff_fields
from governance.access.decision import require
from governance.core.regions import DataRegion
from governance.core.text import (
    checked_reason,
    display_name_refusal,
    identifier_refusal,
    json_refusal,
)
from workflows.ai.models import (
    AIModel,
    AIProvider,
    ModelStatus,
    ProviderKind,
    RegisterChange,
    RegisterChangeStatus,
    RegisterEntry,
    RegisterOperation,
)
from workflows.events import WorkflowEvent

PROVIDER_FIELDS = (
    "slug", "name", "kind", "integration_slug", "regions", "retention_days", "trains_on_customer_data",
    "contract_reference", "dpa_on_file", "last_reviewed_on", "review_every_days",
)  # fmt: skip
MODEL_FIELDS = (
    "slug", "model_id", "model_version", "licence", "artefact_sha256", "model_card", "status",
    "last_reviewed_on", "review_every_days",
)  # fmt: skip
MAX_MODEL_CARD_BYTES = 64 * 1024
MODEL_CARD_KEYS = frozenset({"bom-ref", "modelParameters", "quantitativeAnalysis", "considerations"})
MAX_RETENTION_DAYS = 36500
MAX_REVIEW_DAYS = 3650
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# --- Checking a proposed state ----------------------------------------------------------------


def _text(
    errors: dict, values: dict, field: str, *, limit: int, required: bool = True, ident: bool = False
) -> str:
    value = values.get(field, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[field] = "Text expected."
        return ""
    refusal = identifier_refusal(value) if ident else display_name_refusal(value)
    if refusal:
        errors[field] = refusal
        return ""
    value = value.strip()
    if required and not value:
        errors[field] = "Required."
    elif len(value) > limit:
        errors[field] = f"At most {limit:,} characters."
    return value


def _slug(errors: dict, values: dict, field: str) -> str:
    value = _text(errors, values, field, limit=60, ident=True)
    if value and not _SLUG.match(value):
        errors[field] = "Lower-case letters, digits and hyphens (e.g. llm-eu), at most 60."
    return value


def _bool(errors: dict, values: dict, field: str) -> bool:
    value = values.get(field)
    if not isinstance(value, bool):
        errors[field] = "Yes or no."
        return False
    return value


def _number(
    errors: dict, values: dict, field: str, *, low: int, high: int, default: int | None = None
) -> int:
    value = values.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors[field] = f"A whole number from {low} to {high:,}."
        return low
    return value


def _day(errors: dict, values: dict, field: str) -> date | None:
    value = values.get(field)
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            errors[field] = "A date (YYYY-MM-DD)."
            return None
    if not isinstance(value, date):
        errors[field] = "A date (YYYY-MM-DD)."
        return None
    if value > timezone.now().date():
        errors[field] = "The day of the last review (not in the future)."
        return None
    return value


def model_card_refusal(card: Any) -> str | None:
    """Why ``card`` is not an acceptable CycloneDX ``modelCard`` object (None when it is)."""
    if not isinstance(card, dict):
        return "A JSON object (CycloneDX modelCard)."
    found = json_refusal(card)
    if found:
        return f"{found[0]}: {found[1]}" if found[0] else found[1]
    size = len(json.dumps(card, ensure_ascii=False).encode())
    if size > MAX_MODEL_CARD_BYTES:
        return f"At most {MAX_MODEL_CARD_BYTES // 1024} KB of JSON ({size:,} bytes given)."
    unknown = sorted(set(card) - MODEL_CARD_KEYS)
    if unknown:
        return (
            f"Not a field of a CycloneDX modelCard: {', '.join(unknown)[:200]} "
            f"(allowed: {', '.join(sorted(MODEL_CARD_KEYS))})."
        )
    considerations = card.get("considerations", {})
    if not isinstance(considerations, dict):
        return "considerations: a JSON object."
    fairness = considerations.get("fairnessAssessments", [])
    if not isinstance(fairness, list) or not all(isinstance(item, dict) for item in fairness):
        return "considerations.fairnessAssessments: a list of objects (groupAtRisk, benefits, harms, mitigationStrategy)."
    return None


def provider_values_checked(values: dict, *, organization, provider: AIProvider | None = None) -> dict:
    """A provider's proposed state, cleaned, or a ``ValidationError`` with an error per field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {
        "slug": _slug(errors, values, "slug"),
        "name": _text(errors, values, "name", limit=200),
        "integration_slug": _slug(errors, values, "integration_slug"),
        "contract_reference": _text(errors, values, "contract_reference", limit=200, required=False),
        "trains_on_customer_data": _bool(errors, values, "trains_on_customer_data"),
        "dpa_on_file": _bool(errors, values, "dpa_on_file"),
        "retention_days": _number(errors, values, "retention_days", low=0, high=MAX_RETENTION_DAYS),
        "review_every_days": _number(
            errors, values, "review_every_days", low=1, high=MAX_REVIEW_DAYS, default=365
        ),
        "last_reviewed_on": _day(errors, values, "last_reviewed_on"),
    }
    kind = values.get("kind")
    if kind not in ProviderKind.values:
        errors["kind"] = "Choose SaaS, self-hosted or on-premise."
    clean["kind"] = kind
    regions = values.get("regions")
    if (
        not isinstance(regions, list | tuple)
        or not regions
        or not all(isinstance(r, str) and r in DataRegion.values for r in regions)
    ):
        errors["regions"] = f"One or more data regions ({', '.join(DataRegion.values)})."
    else:
        clean["regions"] = sorted(set(regions))
    if kind == ProviderKind.SAAS and "contract_reference" not in errors and not clean["contract_reference"]:
        errors["contract_reference"] = (
            "A SaaS provider's contract says whether it trains on customer data: give its reference."
        )
    if clean["slug"] and "slug" not in errors:
        if (
            provider is None
            and AIProvider.objects.filter(organization=organization, slug=clean["slug"]).exists()
        ):
            errors["slug"] = "A provider with this slug is registered; propose a change to it instead."
        if provider is not None and clean["slug"] != provider.slug:
            errors["slug"] = "Workflows name the provider by its slug: it cannot change (register a new one)."
    if errors:
        raise ValidationError(errors)
    return clean


def model_values_checked(values: dict, *, provider: AIProvider, model: AIModel | None = None) -> dict:
    """A model's proposed state, cleaned, or a ``ValidationError`` with an error per field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {
        "slug": _slug(errors, values, "slug"),
        "model_id": _text(errors, values, "model_id", limit=200, ident=True),
        "model_version": _text(errors, values, "model_version", limit=100, ident=True),
        "licence": _text(errors, values, "licence", limit=200),
        "artefact_sha256": _text(
            errors, values, "artefact_sha256", limit=64, required=False, ident=True
        ).lower(),
        "review_every_days": _number(
            errors, values, "review_every_days", low=1, high=MAX_REVIEW_DAYS, default=365
        ),
        "last_reviewed_on": _day(errors, values, "last_reviewed_on"),
    }
    status = values.get("status", ModelStatus.PENDING)
    if status not in ModelStatus.values:
        errors["status"] = "Approved, pending or blocked."
    clean["status"] = status
    card = values.get("model_card") or {}
    refusal = model_card_refusal(card)
    if refusal:
        errors["model_card"] = refusal
    clean["model_card"] = card
    sha = clean["artefact_sha256"]
    if "artefact_sha256" not in errors:
        if sha and not _SHA256.match(sha):
            errors["artefact_sha256"] = "The SHA-256 of the model's artefact: 64 hexadecimal characters."
        elif not sha and provider.kind in (ProviderKind.SELF_HOSTED, ProviderKind.ON_PREMISE):
            errors["artefact_sha256"] = (
                "A self-hosted or on-premise model is pinned by the SHA-256 of its artefact (64 hex)."
            )
    if clean["slug"] and "slug" not in errors:
        if model is None and AIModel.objects.filter(provider=provider, slug=clean["slug"]).exists():
            errors["slug"] = "This provider has a model with this slug; propose a change to it instead."
        if model is not None and clean["slug"] != model.slug:
            errors["slug"] = "Workflows name the model by its slug: it cannot change (register a new one)."
    if errors:
        raise ValidationError(errors)
    return clean


def _stored(values: dict) -> dict:
    """A cleaned state as JSON (dates as ISO strings)."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}


def provider_state(provider: AIProvider) -> dict:
    return _stored({name: getattr(provider, name) for name in PROVIDER_FIELDS})


def model_state(model: AIModel) -> dict:
    return _stored({name: getattr(model, name) for name in MODEL_FIELDS})


# --- Propose, approve, reject -----------------------------------------------------------------


def _checked_change(
    *, organization, entry: str, operation: str, values: dict, provider, model
) -> tuple[dict, AIProvider | None, AIModel | None]:
    """The change's cleaned values and targets, or field errors."""
    if entry not in RegisterEntry.values:
        raise ValidationError({"entry": "A provider or a model."})
    if operation not in RegisterOperation.values:
        raise ValidationError({"operation": "Register, update or block."})
    if provider is not None and provider.organization_id != organization.pk:
        raise ValidationError({"provider": "Choose a provider of your organisation."})
    if model is not None:
        if model.provider.organization_id != organization.pk:
            raise ValidationError({"model": "Choose a model of your organisation."})
        provider = model.provider
    if entry == RegisterEntry.PROVIDER:
        if operation != RegisterOperation.CREATE and provider is None:
            raise ValidationError({"provider": "Choose the provider to change."})
        if operation == RegisterOperation.BLOCK:
            return {}, provider, None
        current = provider if operation == RegisterOperation.UPDATE else None
        return provider_values_checked(values, organization=organization, provider=current), current, None
    if provider is None:
        raise ValidationError({"provider": "Choose the model's provider."})
    if operation != RegisterOperation.CREATE and model is None:
        raise ValidationError({"model": "Choose the model to change."})
    if operation == RegisterOperation.BLOCK:
        return {}, provider, model
    current = model if operation == RegisterOperation.UPDATE else None
    return model_values_checked(values, provider=provider, model=current), provider, current


def register_change_propose(
    *,
    actor,
    organization,
    entry: str,
    operation: str,
    reason: str,
    values: dict | None = None,
    provider: AIProvider | None = None,
    model: AIModel | None = None,
) -> RegisterChange:
    """Propose a change of the register; nothing changes until another compliance officer approves."""
    reason = checked_reason(reason, field="reason")
    with audited_transaction():
        require(actor, "ai_register.manage", organization, fresh=True)
        clean, provider, model = _checked_change(
            organization=organization, entry=entry, operation=operation, values=values or {},
            provider=provider, model=model,
        )  # fmt: skip
        change = RegisterChange.objects.create(
            organization=organization, entry=entry, operation=operation, provider=provider, model=model,
            values=_stored(clean), reason=reason, proposed_by=actor,
        )  # fmt: skip
        before = {}
        if operation != RegisterOperation.CREATE:
            before = model_state(model) if entry == RegisterEntry.MODEL else provider_state(provider)
        audit_event_record(
            action=WorkflowEvent.AI_REGISTER_CHANGE_PROPOSED,
            actor=actor,
            target=change,
            organization_id=organization.pk,
            data={
                "entry": entry, "operation": operation, "subject": change.subject, "reason": reason,
                "diff": diff_fields(before, change.values) if operation != RegisterOperation.BLOCK else {},
            },
        )  # fmt: skip
    return change


def _decided(change: RegisterChange, actor) -> RegisterChange:
    change = (
        RegisterChange.objects.select_for_update(of=("self",))
        .select_related("provider", "model")
        .get(pk=change.pk)
    )
    if change.proposed_by_id == actor.pk:
        raise ValidationError(
            {"decided_by": "You proposed this change; another compliance officer must decide it."}
        )
    if change.status != RegisterChangeStatus.PENDING:
        raise ValidationError({"status": f"This change was already {change.get_status_display().lower()}."})
    return change


def _apply(change: RegisterChange, clean: dict) -> list[tuple[Any, dict, dict]]:
    """Write the change; returns each row written with its state before and after (blocking a
    provider writes each of its models that was not blocked yet, and not the provider itself)."""
    now = timezone.now()
    if change.entry == RegisterEntry.PROVIDER:
        if change.operation == RegisterOperation.BLOCK:
            models = AIModel.objects.select_for_update().filter(provider_id=change.provider_id)
            written = []
            for model in models.exclude(status=ModelStatus.BLOCKED).order_by("pk"):
                before = model_state(model)
                model.status, model.updated_at = ModelStatus.BLOCKED, now
                model.save(update_fields=["status", "updated_at"])
                written.append((model, before, model_state(model)))
            return written
        if change.operation == RegisterOperation.CREATE:
            provider = AIProvider.objects.create(organization_id=change.organization_id, **clean)
            return [(provider, {}, provider_state(provider))]
        provider = AIProvider.objects.select_for_update().get(pk=change.provider_id)
        before = provider_state(provider)
        for name, value in clean.items():
            setattr(provider, name, value)
        provider.updated_at = now
        provider.save()
        return [(provider, before, provider_state(provider))]
    if change.operation == RegisterOperation.CREATE:
        model = AIModel.objects.create(provider_id=change.provider_id, **clean)
        return [(model, {}, model_state(model))]
    model = AIModel.objects.select_for_update().get(pk=change.model_id)
    before = model_state(model)
    if change.operation == RegisterOperation.BLOCK:
        model.status = ModelStatus.BLOCKED
    else:
        for name, value in clean.items():
            setattr(model, name, value)
    model.updated_at = now
    model.save()
    return [(model, before, model_state(model))]


def register_change_approve(*, actor, change: RegisterChange, comment: str) -> RegisterChange:
    """Approve another officer's proposal and apply it to the register, in one transaction."""
    comment = checked_reason(comment, field="comment")
    with audited_transaction():
        require(actor, "ai_register.manage", change.organization, fresh=True)
        change = _decided(change, actor)
        # Checked again: the register may have moved on since the proposal (a slug taken, a kind changed).
        clean, _, _ = _checked_change(
            organization=change.organization, entry=change.entry, operation=change.operation,
            values=change.values, provider=change.provider,
            model=change.model if change.operation != RegisterOperation.CREATE else None,
        )  # fmt: skip
        written = _apply(change, clean)
        change.status, change.decided_by, change.decided_at = (
            RegisterChangeStatus.APPROVED,
            actor,
            timezone.now(),
        )
        change.decision_comment = comment
        if change.operation == RegisterOperation.CREATE:
            if change.entry == RegisterEntry.PROVIDER:
                change.provider = written[0][0]
            else:
                change.model = written[0][0]
        change.save(
            update_fields=["status", "decided_by", "decided_at", "decision_comment", "provider", "model"]
        )
        where = {"organization_id": change.organization_id}
        audit_event_record(
            action=WorkflowEvent.AI_REGISTER_CHANGE_APPROVED,
            actor=actor,
            target=change,
            **where,
            data={"subject": change.subject, "operation": change.operation,
                  "proposed_by": change.proposed_by.email, "comment": comment},
        )  # fmt: skip
        for row, before, after in written:  # one event per row written, naming it
            audit_event_record(
                action=WorkflowEvent.AI_REGISTER_CHANGE_APPLIED,
                actor=actor,
                target=row,
                **where,
                data={"change": change.pk, "entry": change.entry, "operation": change.operation,
                      "subject": str(row), "diff": diff_fields(before, after)},
            )  # fmt: skip
            _supersede(row, by=change, actor=actor)
    return change


def _supersede(row, *, by: RegisterChange, actor) -> None:
    """Pending updates of ``row`` proposed a whole state of the entry as it was then; applied now,
    they would undo what ``by`` just wrote (a block lifted by an old licence fix). They are closed
    as superseded — each with its event — and their proposers propose again from the new state."""
    entry = {"model": row} if isinstance(row, AIModel) else {"provider": row, "entry": RegisterEntry.PROVIDER}
    stale = RegisterChange.objects.select_for_update().filter(
        status=RegisterChangeStatus.PENDING, operation=RegisterOperation.UPDATE, **entry
    )
    now = timezone.now()
    for change in stale.exclude(pk=by.pk).order_by("pk"):
        change.status, change.decided_at = RegisterChangeStatus.REJECTED, now
        change.decision_comment = (
            f"Superseded by change #{by.pk}: the entry changed after this was proposed. "
            "Propose again from its current state."
        )
        change.save(update_fields=["status", "decided_at", "decision_comment"])
        audit_event_record(
            action=WorkflowEvent.AI_REGISTER_CHANGE_REJECTED,
            actor=actor,
            target=change,
            organization_id=change.organization_id,
            data={"subject": change.subject, "operation": change.operation, "superseded_by": by.pk},
        )


def register_change_reject(*, actor, change: RegisterChange, comment: str) -> RegisterChange:
    """Reject another officer's proposal, with a reason."""
    comment = checked_reason(comment, field="comment")
    with audited_transaction():
        require(actor, "ai_register.manage", change.organization, fresh=True)
        change = _decided(change, actor)
        change.status, change.decided_by, change.decided_at = (
            RegisterChangeStatus.REJECTED,
            actor,
            timezone.now(),
        )
        change.decision_comment = comment
        change.save(update_fields=["status", "decided_by", "decided_at", "decision_comment"])
        audit_event_record(
            action=WorkflowEvent.AI_REGISTER_CHANGE_REJECTED,
            actor=actor,
            target=change,
            organization_id=change.organization_id,
            data={"subject": change.subject, "operation": change.operation, "comment": comment},
        )
    return change
