"""A workspace with integrations, an EU builder with a manager, and two compliance officers."""

from __future__ import annotations

from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.utils import timezone

from tests.conftest import member
from tests.factories import UserFactory
from workflows.ai.models import AIModel, AIProvider, ModelStatus, ProviderKind
from workflows.changes import services
from workflows.integrations.models import Integration
from workflows.service_accounts.models import ServiceAccount

TRIAGE = {
    "trigger": {"type": "webhook", "path": "/tickets"},
    "steps": [
        {"id": "fetch", "type": "http_request", "integration": "crm", "method": "GET", "path": "/tickets/new",
         "next": "route"},
        {"id": "route", "type": "branch", "condition": "ticket.priority == 'high'", "then": "page", "else": "tag"},
        {"id": "page", "type": "human_approval", "approver_role": "workspace_owner", "next": None},
        {"id": "tag", "type": "transform", "expression": "ticket.tags + ['triaged']", "next": None},
    ],
}  # fmt: skip

AI_STEP = {"id": "classify", "type": "ai_prompt", "provider": "llm", "model": "small-eu",
           "prompt": "Classify: {{ticket}}", "output_schema": {"type": "object"},
           "guardrails": {"redact_pii": True, "max_tokens": 200}, "next": None}  # fmt: skip

BUSINESS_HOURS = datetime.fromisoformat("2026-06-16T08:00:00+00:00")  # Tuesday 10:00 in Berlin


@pytest.fixture(autouse=True)
def _in_business_hours():
    """Workflow tests run on a Tuesday morning in Berlin unless they say otherwise."""
    with mock.patch("governance.access.policies.timezone.now", return_value=BUSINESS_HOURS):
        yield


@pytest.fixture
def shop(world):
    """The builder (EU, manager = owner), a second officer, and the workspace's integrations."""
    for code in ("workflow_builder", "workspace_owner", "compliance_officer", "workflow_operator", "viewer"):
        world.users[code].region = "EU"  # the workspace's data region: region-data-residency lets them in
        world.users[code].save(update_fields=["region"])
    builder = world.users["workflow_builder"]
    builder.manager = world.users["workspace_owner"]
    builder.save(update_fields=["manager"])
    second = UserFactory(organization=world.org, email="officer2@acme.test", region="EU")
    member(second, "compliance_officer", world.ws)
    for slug, sensitivity in (("crm", "none"), ("llm", "none"), ("payroll", "financial"), ("hris", "hr")):
        integration = Integration.objects.create(
            workspace=world.ws, name=slug.upper(), slug=slug, kind="api", sensitivity=sensitivity
        )
        acting_account_for(integration, world.users["workspace_owner"])
    world.second_officer = second
    register_model(world)
    return world


def acting_account_for(integration, owner, *, scopes=("integrations:read", "integrations:write")):
    """The service account a workflow's steps act as through ``integration``."""
    now = timezone.now()
    return ServiceAccount.objects.create(
        workspace=integration.workspace, integration=integration, name=f"{integration.slug} steps",
        scopes=list(scopes), created_by=owner, rotation_due_at=now + timedelta(days=90),
    )  # fmt: skip


def register_model(
    world,
    provider: str = "llm",
    model: str = "small-eu",
    integration: str = "llm",
    *,
    regions=("EU", "US"),
    kind: str = ProviderKind.SAAS,
    status: str = ModelStatus.APPROVED,
    model_id: str | None = None,
    reviewed_days_ago: int = 30,
    model_reviewed_days_ago: int | None = None,
    **model_fields,
) -> AIModel:
    """Put ``provider``/``model`` in the organisation's register (the provider is made once, with
    ``integration`` as its endpoint); the model approved and reviewed ``reviewed_days_ago`` unless
    told otherwise."""
    today = timezone.now().date()
    found, _ = AIProvider.objects.get_or_create(
        organization=world.org,
        slug=provider,
        defaults={
            "name": provider.upper(), "kind": kind, "integration_slug": integration, "regions": list(regions),
            "retention_days": 30, "trains_on_customer_data": False, "contract_reference": "MSA-2026-01",
            "dpa_on_file": True, "last_reviewed_on": today - timedelta(days=reviewed_days_ago),
        },
    )  # fmt: skip
    reviewed = reviewed_days_ago if model_reviewed_days_ago is None else model_reviewed_days_ago
    return AIModel.objects.create(
        provider=found, slug=model, model_id=model_id or model, model_version="1", licence="Apache-2.0",
        status=status, last_reviewed_on=today - timedelta(days=reviewed), **model_fields,
    )  # fmt: skip


def new_workflow(world, *, environment="staging", handles_pii=False, definition=None, slug="triage"):
    return services.workflow_create(
        actor=world.users["workflow_builder"], workspace=world.ws, name="Ticket triage", slug=slug,
        environment=environment, data_region="EU", handles_pii=handles_pii, definition=definition or TRIAGE,
        summary="First version",
    )  # fmt: skip
