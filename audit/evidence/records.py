"""The governance records of one workspace that go into an evidence package.

Each collector yields rows lazily (``.iterator()``) and notes exceptions in the ``Findings`` it is
given, so the summary can be written last without holding the records in memory. Credentials are
read from the secrets store with their value deferred: only names, fingerprints, statuses and
dates ever leave it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, Q

from audit.canonical import parse
from audit.models import AuditEvent
from governance.access.models import Policy
from governance.tenancy.models import Membership, Workspace
from workflows.changes.models import Approval, ChangeRequest
from workflows.credentials.models import CredentialStatus, CredentialVersion
from workflows.service_accounts.models import DisabledReason, ServiceAccount
from workflows.service_accounts.selectors import last_activity

EXAMPLES_KEPT = 50  # per kind of exception: the summary lists this many and counts the rest


@dataclass(frozen=True)
class Scope:
    """What a package covers: one workspace, events with ``start <= occurred_at < end``."""

    workspace: Workspace
    start: datetime
    end: datetime
    built_at: datetime

    def in_period(self, name: str) -> Q:
        return Q(**{f"{name}__gte": self.start, f"{name}__lt": self.end})


@dataclass
class Finding:
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(example)


@dataclass
class Findings:
    """Counts of what was reviewed and the exceptions found, filled while the files are written."""

    counts: dict[str, int] = field(default_factory=dict)
    exceptions: dict[str, Finding] = field(default_factory=dict)

    def count(self, name: str, by: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + by

    def flag(self, kind: str, example: str) -> None:
        self.exceptions.setdefault(kind, Finding()).add(example)


# --- Approvals ------------------------------------------------------------------------------


def _diff_summary(diff: dict[str, Any]) -> dict[str, Any]:
    steps = diff.get("steps") or []
    kinds = [step.get("kind") for step in steps if isinstance(step, dict)]
    return {
        "new_workflow": bool(diff.get("new_workflow")),
        "steps_added": kinds.count("added"),
        "steps_changed": kinds.count("changed"),
        "steps_removed": kinds.count("removed"),
        "trigger_changed": bool(diff.get("trigger")),
        "order_changed": bool(diff.get("order_changed")),
    }


def _diff_text(summary: dict[str, Any]) -> str:
    parts = ["new workflow"] if summary["new_workflow"] else []
    parts += [
        f"{summary[f'steps_{kind}']} {kind}"
        for kind in ("added", "changed", "removed")
        if summary[f"steps_{kind}"]
    ]
    parts += [what for what in ("trigger", "order") if summary[f"{what}_changed"]]
    return ", ".join(parts) or "no change"


def approval_records(scope: Scope, findings: Findings) -> Iterator[dict[str, Any]]:
    """Every change request of the workspace created, submitted, decided or reviewed in the period."""
    touched = (
        scope.in_period("created_at")
        | scope.in_period("submitted_at")
        | scope.in_period("decided_at")
        | Q(pk__in=Approval.objects.filter(scope.in_period("decided_at")).values("change_id"))
    )
    changes = (
        ChangeRequest.objects.filter(touched, workflow__workspace=scope.workspace)
        .select_related("workflow", "version", "author")
        .prefetch_related(
            Prefetch(
                "approvals", queryset=Approval.objects.select_related("reviewer").order_by("decided_at", "id")
            )
        )
        .order_by("id")
    )
    for change in changes.iterator(chunk_size=500):
        findings.count("changes")
        tiers = change.required_tiers or []
        needs_checklist = {tier.get("code") for tier in tiers if tier.get("checklist")}
        approvals = []
        approving = {}  # reviewer id -> tiers approved
        for approval in change.approvals.all():
            findings.count("approvals")
            missing_checklist = (
                approval.decision == "approve"
                and approval.tier in needs_checklist
                and not (approval.checklist and all(approval.checklist.values()))
            )
            if missing_checklist:
                findings.flag(
                    "approval missing its checklist",
                    f"change #{change.pk} tier {approval.tier} by {approval.reviewer.email}",
                )
            if approval.decision == "approve":
                approving.setdefault(approval.reviewer_id, []).append(approval.tier)
            approvals.append(
                {
                    "reviewer": approval.reviewer.email,
                    "tier": approval.tier,
                    "decision": approval.decision,
                    "decided_at": approval.decided_at,
                    "comment": approval.comment,
                    "checklist": approval.checklist,
                    "checklist_missing": missing_checklist,
                }
            )
        approved_tiers = {tier for tiers_of in approving.values() for tier in tiers_of}
        checks = {
            "author_is_not_an_approver": change.author_id not in approving,
            "each_approver_counted_once": all(len(tiers_of) == 1 for tiers_of in approving.values()),
            "required_tiers_approved": approved_tiers >= {tier.get("code") for tier in tiers},
            "checklists_complete": not any(a["checklist_missing"] for a in approvals),
        }
        for name in ("author_is_not_an_approver", "each_approver_counted_once"):
            if not checks[name]:
                findings.flag(
                    "segregation of duties not met", f"change #{change.pk}: {name.replace('_', ' ')} fails"
                )
        if change.state in ("approved", "applied") and not checks["required_tiers_approved"]:
            findings.flag("approved without every required tier", f"change #{change.pk}")
        summary = _diff_summary(change.diff or {})
        yield {
            "change": change.pk,
            "workflow": change.workflow.slug,
            "workflow_name": change.workflow.name,
            "version": change.version.number,
            "author": change.author.email,
            "summary": change.summary,
            "state": change.state,
            "created_at": change.created_at,
            "submitted_at": change.submitted_at,
            "decided_at": change.decided_at,
            "diff_summary": summary,
            "diff_text": _diff_text(summary),
            "required_tiers": [
                {"code": t.get("code"), "approver": t.get("approver"), "checklist": bool(t.get("checklist"))}
                for t in tiers
            ],
            "approvals": approvals,
            "checks": checks,
        }


APPROVALS_HEADER = (
    "change",
    "workflow",
    "version",
    "state",
    "summary",
    "author",
    "submitted_at",
    "decided_at",
    "diff",
    "required_tiers",
    "approvals",
    "author_is_not_an_approver",
    "each_approver_counted_once",
    "required_tiers_approved",
    "checklists_complete",
)


def approval_row(record: dict[str, Any]) -> list[Any]:
    approvals = [
        f"{a['reviewer']} ({a['tier']}: {a['decision']}{', checklist missing' if a['checklist_missing'] else ''})"
        for a in record["approvals"]
    ]
    checks = record["checks"]
    return [
        record["change"],
        record["workflow"],
        record["version"],
        record["state"],
        record["summary"],
        record["author"],
        record["submitted_at"],
        record["decided_at"],
        record["diff_text"],
        [t["code"] for t in record["required_tiers"]],
        approvals,
        checks["author_is_not_an_approver"],
        checks["each_approver_counted_once"],
        checks["required_tiers_approved"],
        checks["checklists_complete"],
    ]


# --- Memberships and role changes -----------------------------------------------------------------

MEMBERSHIPS_HEADER = (
    "user",
    "name",
    "role",
    "scope",
    "since",
    "added_in_period",
    "user_active",
    "last_login",
)


def membership_rows(scope: Scope, findings: Findings) -> Iterator[list[Any]]:
    """The workspace's members now, and the organisation-wide roles that reach into it."""
    workspace = scope.workspace
    rows = (
        Membership.objects.filter(
            Q(workspace=workspace) | Q(workspace__isnull=True, organization_id=workspace.organization_id)
        )
        .select_related("user", "role")
        .order_by("workspace_id", "user__email", "id")
    )
    for membership in rows.iterator(chunk_size=1000):
        findings.count("memberships")
        user = membership.user
        yield [
            user.email,
            user.display_name,
            membership.role_id,
            "workspace" if membership.workspace_id else "organisation",
            membership.created_at,
            scope.start <= membership.created_at < scope.end,
            user.is_active,
            user.last_login,
        ]


ROLE_CHANGES_HEADER = ("sequence", "occurred_at", "action", "actor", "target", "details")


def role_change_rows(scope: Scope, findings: Findings) -> Iterator[list[Any]]:
    """Membership events of the period, read from the ledger's canonical records."""
    events = (
        AuditEvent.objects.filter(
            scope.in_period("occurred_at"), workspace=scope.workspace, action__startswith="membership."
        )
        .exclude(sequence__isnull=True)
        .order_by("sequence")
        .values_list("sequence", "canonical")
    )
    for sequence, canonical in events.iterator(chunk_size=1000):
        findings.count("role changes")
        document = parse(bytes(canonical))
        yield [
            sequence,
            document["occurred_at"],
            document["action"],
            document["actor"]["label"],
            document["target"]["label"],
            document["data"],
        ]


# --- Service accounts and credentials ------------------------------------------------------------

SERVICE_ACCOUNTS_HEADER = (
    "name",
    "integration",
    "scopes",
    "active",
    "disabled_reason",
    "disabled_at",
    "created_at",
    "last_used_at",
    "last_activity",
    "rotation_period_days",
    "last_rotated_at",
    "rotation_due_at",
    "rotation_overdue",
    "dormant",
)


def service_account_rows(scope: Scope, findings: Findings) -> Iterator[list[Any]]:
    now = scope.built_at
    dormant_since = now - timedelta(days=settings.SERVICE_ACCOUNT_DORMANT_DAYS)
    accounts = (
        ServiceAccount.objects.filter(workspace=scope.workspace)
        .select_related("integration")
        .annotate(activity=last_activity())
        .order_by("name", "id")
    )
    for account in accounts.iterator(chunk_size=1000):
        findings.count("service accounts")
        overdue = account.is_active and account.rotation_due_at <= now
        dormant = (account.is_active and account.activity < dormant_since) or (
            account.disabled_reason == DisabledReason.DORMANT
        )
        if overdue:
            findings.flag(
                "service account rotation overdue", f"{account.name} (due {account.rotation_due_at:%Y-%m-%d})"
            )
        if dormant:
            state = "still active" if account.is_active else "disabled"
            findings.flag(
                "dormant service account",
                f"{account.name} ({state}, last activity {account.activity:%Y-%m-%d})",
            )
        yield [
            account.name,
            account.integration.slug,
            account.scopes,
            account.is_active,
            account.disabled_reason,
            account.disabled_at,
            account.created_at,
            account.last_used_at,
            account.activity,
            account.rotation_period_days,
            account.last_rotated_at,
            account.rotation_due_at,
            overdue,
            dormant,
        ]


CREDENTIALS_HEADER = (
    "credential",
    "integration_id",
    "rotation_required",
    "version",
    "fingerprint",
    "status",
    "created_at",
    "tested_at",
    "test_ok",
    "promoted_at",
    "grace_until",
    "revoked_at",
)


def credential_rows(scope: Scope, findings: Findings) -> Iterator[list[Any]]:
    """Credential versions: fingerprints, statuses and dates. The value column is never loaded."""
    versions = (
        CredentialVersion.objects.using("secrets")
        .defer("value", "test_message")
        .filter(workspace_id=scope.workspace.pk)
        .select_related("credential")
        .order_by("credential__name", "credential_id", "number")
    )
    for version in versions.iterator(chunk_size=1000):
        findings.count("credential versions")
        credential = version.credential
        if credential.rotation_required and version.status == CredentialStatus.ACTIVE:
            findings.flag("credential rotation required", f"{credential.name} (active v{version.number})")
        yield [
            credential.name,
            credential.integration_id,
            credential.rotation_required,
            version.number,
            version.fingerprint,
            version.status,
            version.created_at,
            version.tested_at,
            version.test_ok,
            version.promoted_at,
            version.grace_until,
            version.revoked_at,
        ]


# --- Policies ------------------------------------------------------------------------------------


def policies_in_force(scope: Scope, findings: Findings) -> list[dict[str, Any]]:
    """The enabled policies (shipped and the organisation's) not switched off in this workspace.

    The same selection as ``governance.access.policies.policies_in_force``, with the names,
    versions and texts an auditor reads rather than the compiled form the decision point needs.
    """
    workspace = scope.workspace
    rows = (
        Policy.objects.filter(
            Q(organization__isnull=True) | Q(organization_id=workspace.organization_id), enabled=True
        )
        .exclude(disabled_workspaces=workspace)
        .order_by("name", "id")
    )
    policies = []
    for policy in rows:
        findings.count("policies in force")
        policies.append(
            {
                "name": policy.name,
                "shipped": policy.organization_id is None,
                "version": policy.version,
                "updated_at": policy.updated_at,
                "description": policy.description,
                "text": policy.text,
            }
        )
    return policies
