"""Reads of the AI register: may a workspace use a model now (``ai_model_verdict``), may a
definition be approved and activated (``definition_ai_refusal``), who uses a model, and what the
step editor shows of it.

A verdict refuses, with a sentence naming the provider or model: an unregistered provider or model,
a model pending or blocked, a provider or model overdue for review, and a provider whose regions do
not include the workspace's data region (residency)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from governance.access.queries import restrict
from workflows.ai.models import AIModel, AIProvider, ModelStatus, RegisterChange, RegisterChangeStatus
from workflows.changes.models import WorkflowVersion


@dataclass(frozen=True)
class ModelVerdict:
    """May a workspace use this provider's model now? ``reason`` says why not (empty when ok)."""

    ok: bool
    reason: str
    provider: AIProvider | None
    model: AIModel | None


def review_due_on(entry: AIProvider | AIModel) -> date | None:
    """The day ``entry`` is due for review again (None: it was never reviewed, so it is due now)."""
    if entry.last_reviewed_on is None:
        return None
    return entry.last_reviewed_on + timedelta(days=entry.review_every_days)


def review_overdue(entry: AIProvider | AIModel, on: date) -> bool:
    due = review_due_on(entry)
    return due is None or due < on


def _overdue_reason(what: str, entry: AIProvider | AIModel) -> str:
    due = review_due_on(entry)
    if due is None:
        return f"The {what} has never been reviewed; a compliance officer must review it first."
    return f"The {what}'s review was due on {due.isoformat()} and is overdue."


def ai_model_verdict(*, workspace, provider: str, model: str, on: date | None = None) -> ModelVerdict:
    """Whether ``workspace`` may send data to the register's model ``provider``/``model`` on ``on``
    (today): registered in the workspace's organisation, approved, reviewed on time, and processing
    data in the workspace's data region."""
    on = on or timezone.now().date()
    found = AIProvider.objects.filter(organization_id=workspace.organization_id, slug=provider).first()
    if found is None:
        return ModelVerdict(False, f"The AI provider {provider!r} is not in the register.", None, None)
    entry = AIModel.objects.filter(provider=found, slug=model).first()
    name = f"{provider}/{model}"
    if entry is None:
        return ModelVerdict(
            False, f"The model {model!r} of the provider {provider!r} is not in the register.", found, None
        )
    entry.provider = found
    if entry.status == ModelStatus.BLOCKED:
        return ModelVerdict(False, f"The model {name} is blocked in the register.", found, entry)
    if entry.status != ModelStatus.APPROVED:
        return ModelVerdict(
            False,
            f"The model {name} is pending in the register: it is not approved for use yet.",
            found,
            entry,
        )
    if review_overdue(found, on):
        return ModelVerdict(
            False, f"{name}: " + _overdue_reason(f"provider {provider!r}", found), found, entry
        )
    if review_overdue(entry, on):
        return ModelVerdict(False, f"{name}: " + _overdue_reason(f"model {name}", entry), found, entry)
    if workspace.data_region not in (found.regions or []):
        regions = ", ".join(found.regions or []) or "none"
        return ModelVerdict(
            False,
            f"The provider {provider!r} processes data in {regions}, not in the workspace's data region "
            f"{workspace.data_region}: the model {name} may not be sent its data (residency).",
            found,
            entry,
        )
    return ModelVerdict(True, "", found, entry)


def ai_steps(definition: Any) -> list[dict]:
    """The ``ai_prompt`` steps of a definition (any other shape has none)."""
    steps = definition.get("steps") if isinstance(definition, dict) else None
    return [
        step
        for step in steps or []
        if isinstance(step, dict)
        and step.get("type") == "ai_prompt"
        and isinstance(step.get("provider"), str)
        and isinstance(step.get("model"), str)
    ]


def definition_ai_verdicts(
    workspace, definition: Any, on: date | None = None
) -> list[tuple[str, ModelVerdict]]:
    """The register's verdict on each AI step of ``definition`` for ``workspace``: (step id, verdict)."""
    on = on or timezone.now().date()
    return [
        (
            str(step.get("id", "?")),
            ai_model_verdict(workspace=workspace, provider=step["provider"], model=step["model"], on=on),
        )
        for step in ai_steps(definition)
    ]


def definition_ai_refusal(workspace, definition: Any, on: date | None = None) -> str:
    """Why ``definition`` may not be approved or activated in ``workspace`` by the register ("" when it may)."""
    return " ".join(
        f"Step {step_id!r}: {verdict.reason}"
        for step_id, verdict in definition_ai_verdicts(workspace, definition, on)
        if not verdict.ok
    )


def versions_using(model: AIModel) -> QuerySet[WorkflowVersion]:
    """The workflow versions of the model's organisation whose definitions name it in an AI step."""
    versions = WorkflowVersion.objects.filter(
        workflow__workspace__organization_id=model.provider.organization_id
    ).select_related("workflow__workspace")
    wanted = {"type": "ai_prompt", "provider": model.provider.slug, "model": model.slug}
    if connection.vendor == "postgresql":
        return versions.filter(definition__steps__contains=[wanted]).order_by("workflow__name", "number")
    ids = [
        v.pk
        for v in versions.only("pk", "definition")
        if any(
            s.get("provider") == wanted["provider"] and s.get("model") == wanted["model"]
            for s in ai_steps(v.definition)
        )
    ]
    return versions.filter(pk__in=ids).order_by("workflow__name", "number")


def model_used_by(model: AIModel) -> list[dict]:
    """Per workflow using ``model``: the workflow, the numbers of its versions that name it, and
    whether its active version is one of them."""
    used: dict[int, dict] = {}
    for version in versions_using(model):
        workflow = version.workflow
        row = used.setdefault(workflow.pk, {"workflow": workflow, "versions": [], "active": False})
        row["versions"].append(version.number)
        if workflow.active_version_id == version.pk:
            row["active"] = True
    return list(used.values())


def providers_visible_to(actor) -> QuerySet[AIProvider]:
    return restrict(AIProvider.objects.all(), actor, "ai_register.view")


def models_visible_to(actor) -> QuerySet[AIModel]:
    return restrict(AIModel.objects.select_related("provider"), actor, "ai_register.view")


def pending_register_changes(organization_id: int) -> QuerySet[RegisterChange]:
    return RegisterChange.objects.filter(organization_id=organization_id, status=RegisterChangeStatus.PENDING)


def register_facts(workspace, provider: str, model: str, on: date | None = None) -> dict:
    """What the step editor shows of a step's model: the register's verdict and its facts."""
    on = on or timezone.now().date()
    verdict = ai_model_verdict(workspace=workspace, provider=provider, model=model, on=on)
    facts: dict[str, Any] = {"ok": verdict.ok, "reason": verdict.reason, "provider": provider, "model": model}
    if verdict.provider is not None:
        p = verdict.provider
        facts.update(
            provider_name=p.name,
            kind=p.get_kind_display(),
            regions=", ".join(p.regions or []) or "none",
            retention_days=p.retention_days,
            trains_on_customer_data=p.trains_on_customer_data,
            contract_reference=p.contract_reference,
            dpa_on_file=p.dpa_on_file,
            provider_review_due=review_due_on(p),
        )
    if verdict.model is not None:
        m = verdict.model
        facts.update(
            status=m.get_status_display(),
            model_id=m.model_id,
            model_version=m.model_version,
            licence=m.licence,
            model_review_due=review_due_on(m),
        )
    return facts
