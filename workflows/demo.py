"""Demo workflows for ``seed_demo``: a support-ticket triage with an AI step, a CRM sync and a
payroll export through an HR integration, with changes waiting in the officers' inbox.

Everything goes through the real services, so the ledger tells the demo's story too.
"""

from __future__ import annotations

import copy
import secrets as random_source

from workflows.changes import services
from workflows.changes.models import Workflow
from workflows.credentials.models import STORE, Credential
from workflows.credentials.services import credential_create
from workflows.integrations.models import Integration
from workflows.integrations.services import integration_create

TRIAGE = {
    "trigger": {"type": "webhook", "path": "/support/tickets"},
    "steps": [
        {
            "id": "fetch",
            "type": "http_request",
            "integration": "crm",
            "method": "GET",
            "path": "/tickets/{{id}}",
            "next": "classify",
        },
        {
            "id": "classify",
            "type": "ai_prompt",
            "provider": "llm-eu",
            "model": "small-eu",
            "prompt": "Classify this support ticket by urgency and topic: {{ticket.body}}",
            "output_schema": {"type": "object", "required": ["urgency", "topic"]},
            "guardrails": {"redact_pii": True, "max_tokens": 300, "human_review": True},
            "next": "route",
        },
        {
            "id": "route",
            "type": "branch",
            "condition": "classify.urgency == 'high'",
            "then": "escalate",
            "else": "tag",
        },
        {"id": "escalate", "type": "human_approval", "approver_role": "workflow_operator", "next": None},
        {
            "id": "tag",
            "type": "http_request",
            "integration": "crm",
            "method": "PATCH",
            "path": "/tickets/{{id}}",
            "next": None,
        },
    ],
}
CRM_SYNC = {
    "trigger": {"type": "schedule", "cron": "0 * * * *"},
    "steps": [
        {
            "id": "changed",
            "type": "http_request",
            "integration": "crm",
            "method": "GET",
            "path": "/accounts?changed_since={{last_run}}",
            "next": "map",
        },
        {"id": "map", "type": "transform", "expression": "accounts.map(to_warehouse_row)", "next": "load"},
        {
            "id": "load",
            "type": "http_request",
            "integration": "warehouse",
            "method": "POST",
            "path": "/rows",
            "next": None,
        },
    ],
}
PAYROLL = {
    "trigger": {"type": "manual"},
    "steps": [
        {
            "id": "hours",
            "type": "http_request",
            "integration": "hris",
            "method": "GET",
            "path": "/timesheets",
            "next": "compute",
        },
        {
            "id": "compute",
            "type": "transform",
            "expression": "timesheets.group_by(employee).sum(hours)",
            "next": "export",
        },
        {
            "id": "export",
            "type": "http_request",
            "integration": "hris",
            "method": "POST",
            "path": "/payroll/runs",
            "next": None,
        },
    ],
}
INTEGRATIONS = (
    ("crm", "CRM", "crm", "none"),
    ("llm-eu", "EU language model", "ai_provider", "none"),
    ("warehouse", "Data warehouse", "warehouse", "none"),
    ("hris", "HR system", "hris", "hr"),
)


def seed_workflows(*, workspace, builder, officers: list) -> None:
    """Create the demo workflows once (idempotent); ``officers`` are two compliance officers."""
    if Workflow.objects.filter(workspace=workspace).exists():
        return
    for slug, name, kind, sensitivity in INTEGRATIONS:
        if not Integration.objects.filter(workspace=workspace, slug=slug).exists():
            integration_create(
                actor=None, workspace=workspace, name=name, slug=slug, kind=kind, sensitivity=sensitivity
            )
    # The CRM sync is live (v1 approved by both officers); v2 only changes its schedule and waits
    # for one compliance approval — the quickest path through the inbox.
    sync = _create(
        workspace,
        builder,
        "CRM sync",
        "crm-sync",
        CRM_SYNC,
        handles_pii=False,
        summary="Hourly sync of changed CRM accounts to the warehouse",
    )
    _approve_all(sync, officers)
    every_morning = copy.deepcopy(CRM_SYNC)
    every_morning["trigger"]["cron"] = "0 6 * * 1-5"
    edit = services.workflow_version_create(
        actor=builder,
        workflow=sync.workflow,
        definition=every_morning,
        base_version=sync.version,
        summary="Sync once a weekday morning",
    )
    services.change_request_submit(actor=builder, change=edit)
    # Two new workflows waiting: the triage (AI + personal data) and the payroll export (HR).
    for name, slug, definition, summary in (
        ("Support ticket triage", "ticket-triage", TRIAGE, "Triage new tickets with an AI classifier"),
        ("Payroll export", "payroll-export", PAYROLL, "Monthly payroll run from HR timesheets"),
    ):
        change = _create(workspace, builder, name, slug, definition, handles_pii=True, summary=summary)
        services.change_request_submit(actor=builder, change=change)


def _create(workspace, builder, name, slug, definition, *, handles_pii: bool, summary: str):
    return services.workflow_create(
        actor=builder,
        workspace=workspace,
        name=name,
        slug=slug,
        environment="staging",
        data_region=workspace.data_region,
        handles_pii=handles_pii,
        definition=definition,
        summary=summary,
    )


def _approve_all(change, officers) -> None:
    change = services.change_request_submit(actor=change.author, change=change)
    reviewers = iter(officers)
    for tier in change.required_tiers:
        reviewer = change.author.manager if tier["approver"] == "manager" else next(reviewers)
        change = services.change_request_decide(
            actor=reviewer, change=change, tier=tier["code"], approve=True, comment="Reviewed for the demo."
        )


def seed_credentials(*, workspace, owner) -> None:
    """One credential per demo integration, with a random value: the secrets store in action
    (only the fingerprint is ever shown; the value is generated here and printed nowhere)."""
    for integration in Integration.objects.filter(workspace=workspace).order_by("pk"):
        if not Credential.objects.using(STORE).filter(integration_id=integration.pk).exists():
            credential_create(
                actor=owner,
                integration=integration,
                name="api_key",
                value=f"demo-{random_source.token_urlsafe(24)}",
            )
