"""Demo workflows for ``seed_demo``: a support-ticket triage with an AI step, a CRM sync and a
payroll export through an HR integration, with changes waiting in the officers' inbox.

Everything goes through the real services, so the ledger tells the demo's story too.
"""

from __future__ import annotations

import copy
import secrets as random_source

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from workflows.ai import services as register
from workflows.ai.models import AIProvider
from workflows.changes import services
from workflows.changes.models import Workflow
from workflows.credentials.models import STORE, Credential
from workflows.credentials.services import credential_create
from workflows.integrations.models import Integration
from workflows.integrations.services import integration_create
from workflows.service_accounts.services import service_account_create

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


AI_PROVIDER = {
    "slug": "llm-eu", "name": "EU language model", "kind": "saas", "integration_slug": "llm-eu",
    "regions": ["EU"], "retention_days": 0, "trains_on_customer_data": False,
    "contract_reference": "Demo MSA, clause 7 (no training on customer data)", "dpa_on_file": True,
    "review_every_days": 365,
}  # fmt: skip
AI_MODEL = {
    "slug": "small-eu", "model_id": "small-eu", "model_version": "2026-01", "licence": "Apache-2.0",
    "status": "approved", "review_every_days": 180,
    "model_card": {"modelParameters": {"task": "text classification"},
                   "considerations": {"useCases": ["Support ticket triage"],
                                      "fairnessAssessments": []}},
}  # fmt: skip


def seed_ai_register(*, organization, officers: list, today) -> None:
    """The demo's AI register (once): provider ``llm-eu`` (the ``llm-eu`` integration, EU only)
    and its approved model ``small-eu``, each proposed by the first officer and approved by the
    second, so the demo's AI steps may be approved and run."""
    if AIProvider.objects.filter(organization=organization, slug=AI_PROVIDER["slug"]).exists():
        return
    proposer, approver = officers
    reviewed = {"last_reviewed_on": today.isoformat()}
    change = register.register_change_propose(
        actor=proposer, organization=organization, entry="provider", operation="create",
        values=AI_PROVIDER | reviewed, reason="The demo's EU language model provider.",
    )  # fmt: skip
    change = register.register_change_approve(
        actor=approver, change=change, comment="DPA and regions checked."
    )
    model = register.register_change_propose(
        actor=proposer, organization=organization, entry="model", operation="create", provider=change.provider,
        values=AI_MODEL | reviewed, reason="The demo's ticket classifier.",
    )  # fmt: skip
    register.register_change_approve(actor=approver, change=model, comment="Model card reviewed.")


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


def seed_service_accounts(*, workspace, owner) -> None:
    """The service account of each demo integration, which its workflows' steps act as: reads and
    writes through that integration only (no token is issued; the API is not theirs to use)."""
    for integration in Integration.objects.filter(workspace=workspace, service_account__isnull=True).order_by(
        "pk"
    ):
        service_account_create(
            actor=owner,
            integration=integration,
            name=f"{integration.name} steps",
            scopes=["integrations:read", "integrations:write"],
        )


# --- Workflows the quick start runs for real, against its local demo billing service -------------

INVOICE_APPROVAL = {
    "trigger": {"type": "manual"},
    "input_schema": {
        "type": "object",
        "required": ["vendor", "amount"],
        "properties": {"vendor": {"type": "string", "maxLength": 100}, "amount": {"type": "number", "minimum": 0}},
    },
    "steps": [
        {"id": "total", "type": "transform", "expression": "{'vendor': input.vendor, 'amount': input.amount}",
         "next": "large"},
        {"id": "large", "type": "branch", "condition": "prev.amount > 1000", "then": "approve", "else": "book"},
        {"id": "approve", "type": "human_approval", "approver_role": "compliance_officer", "timeout_hours": 48,
         "next": "book"},
        {"id": "book", "type": "http_request", "integration": "billing", "method": "POST", "path": "/bookings",
         "next": None},
    ],
}  # fmt: skip
EXCHANGE_RATES = {
    "trigger": {"type": "manual"},
    "steps": [
        {"id": "fetch", "type": "http_request", "integration": "billing", "method": "GET", "path": "/rates",
         "next": "usd"},
        {"id": "usd", "type": "transform", "expression": "{'usd': prev.body.rates.USD}", "next": None},
    ],
}  # fmt: skip
VENDOR_SYNC = {
    "trigger": {"type": "manual"},
    "steps": [
        {"id": "vendors", "type": "http_request", "integration": "billing", "method": "GET", "path": "/vendors",
         "next": "count"},
        {"id": "count", "type": "transform", "expression": "{'vendors': size(prev.body.vendors)}", "next": None},
    ],
}  # fmt: skip
RUNNABLE = (
    ("Invoice approval", "invoice-approval", INVOICE_APPROVAL, "Book invoices; large ones need an officer"),
    ("Exchange rates", "exchange-rates", EXCHANGE_RATES, "Fetch the day's exchange rates"),
    ("Vendor sync", "vendor-sync", VENDOR_SYNC, "Count the billing system's vendors"),
)


def seed_runnable(*, workspace, builder, officers: list, admin) -> None:
    """The billing integration (the quick start's local demo service, reached through the
    organisation's allow-list rule for 127.0.0.1) and three workflows that run for real
    (idempotent)."""
    from workflows.integrations.models import NetworkAllowRule
    from workflows.integrations.services import network_allow_rule_create

    organization = workspace.organization
    if not NetworkAllowRule.objects.filter(organization=organization, destination="127.0.0.1/32").exists():
        network_allow_rule_create(
            actor=admin,
            organization=organization,
            destination="127.0.0.1/32",
            reason="The quick start's demo billing service (scripts/demo_service.py) on this machine.",
        )
    if not Integration.objects.filter(workspace=workspace, slug="billing").exists():
        endpoint = f"http://127.0.0.1:{getattr(settings, 'DEMO_SERVICE_PORT', 8765)}"
        try:
            with transaction.atomic():
                integration_create(
                    actor=None, workspace=workspace, name="Billing (demo service)", slug="billing", kind="erp",
                    endpoint_url=endpoint,
                )  # fmt: skip
        except ValidationError:
            # Plain http to loopback is the quick start's (settings.local); elsewhere the integration
            # is made without an address, and its steps fail saying so if anyone runs them.
            integration_create(
                actor=None, workspace=workspace, name="Billing (demo service)", slug="billing", kind="erp"
            )
    for name, slug, definition, summary in RUNNABLE:
        if not Workflow.objects.filter(workspace=workspace, slug=slug).exists():
            change = _create(workspace, builder, name, slug, definition, handles_pii=False, summary=summary)
            _approve_all(change, officers)


def start_demo_runs(*, workspace, operator, officer) -> list[str]:
    """Start the quick start's runs once (they need the worker and the demo service): one that
    completes, one that waits for an officer's approval, one whose first call fails and is retried,
    and one halted by a quarantine. Returns what was started, for the console."""
    from workflows.changes.models import WorkflowStatus
    from workflows.executions.models import Execution
    from workflows.executions.services import execution_trigger

    flows = {
        flow.slug: flow
        for flow in Workflow.objects.filter(workspace=workspace, slug__in=[r[1] for r in RUNNABLE])
    }
    if len(flows) < len(RUNNABLE) or Execution.objects.filter(workflow__in=flows.values()).exists():
        return []
    started = []
    for slug, payload, what in (
        ("invoice-approval", {"vendor": "Acme Paper", "amount": 120}, "completes"),
        (
            "invoice-approval",
            {"vendor": "Globex Consulting", "amount": 48000},
            "waits for an officer's approval",
        ),
        ("exchange-rates", {}, "fails once (HTTP 503), is retried and completes"),
    ):
        run = execution_trigger(actor=operator, workflow=flows[slug], input=payload)
        started.append(f"run {run.pk} of {flows[slug].name}: {what}")
    # Started and quarantined in one transaction: its first step is sent only once both committed,
    # so the worker finds the quarantine at its claim and the run ends halted.
    with transaction.atomic():
        run = execution_trigger(actor=operator, workflow=flows["vendor-sync"], input={})
        services.workflow_set_status(
            actor=officer, workflow=flows["vendor-sync"], status=WorkflowStatus.QUARANTINED,
            reason="Demo: quarantined right after it started (a second officer may lift it).",
        )  # fmt: skip
    started.append(f"run {run.pk} of Vendor sync: is halted by the workflow's quarantine")
    return started
