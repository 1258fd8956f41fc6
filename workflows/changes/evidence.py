"""The changes' records in evidence packages: change requests with their approvals and the
segregation-of-duties checks, as JSON and as CSV.

Registered in the app's ``ready`` (``register``); the package builder writes them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Prefetch, Q

from audit.collectors import EvidenceFile, FileFormat, Findings, Scope, register_evidence_file
from governance.core.choices import ReviewDecision
from workflows.changes.models import Approval, ChangeRequest


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
        yield _approval_record(change, findings)


def _approval_record(change: ChangeRequest, findings: Findings) -> dict[str, Any]:
    """One change with its approvals and the segregation-of-duties checks, exceptions flagged."""
    findings.count("changes")
    tiers = change.required_tiers or []
    needs_checklist = {tier.get("code") for tier in tiers if tier.get("checklist")}
    approvals = []
    approving = {}  # reviewer id -> tiers approved
    for approval in change.approvals.all():
        findings.count("approvals")
        missing_checklist = (
            approval.decision == ReviewDecision.APPROVE
            and approval.tier in needs_checklist
            and not (approval.checklist and all(approval.checklist.values()))
        )
        if missing_checklist:
            findings.flag(
                "approval missing its checklist",
                f"change #{change.pk} tier {approval.tier} by {approval.reviewer.email}",
            )
        if approval.decision == ReviewDecision.APPROVE:
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
    return {
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


def approval_csv_rows(scope: Scope, findings: Findings) -> Iterator[list[Any]]:
    """The approvals again as CSV rows; counted and flagged once, by the JSON file."""
    return (approval_row(record) for record in approval_records(scope, Findings()))


def register() -> None:
    """Add the approvals to every evidence package (called from the app's ``ready``)."""
    for evidence_file in (
        EvidenceFile("approvals.json", 10, FileFormat.JSON_ARRAY, approval_records),
        EvidenceFile("approvals.csv", 11, FileFormat.CSV, approval_csv_rows, APPROVALS_HEADER),
    ):
        register_evidence_file(evidence_file)
