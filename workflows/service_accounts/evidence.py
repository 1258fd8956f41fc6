"""The service accounts in evidence packages: rotation clocks, last activity, and the overdue and
dormant ones flagged.

Registered in the app's ``ready`` (``register``); the package builder writes them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from audit.collectors import EvidenceFile, FileFormat, Findings, Scope, register_evidence_file
from workflows.service_accounts.models import ServiceAccount
from workflows.service_accounts.selectors import accounts_with_rotation_state

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
    accounts = accounts_with_rotation_state(
        ServiceAccount.objects.filter(workspace=scope.workspace).select_related("integration"), scope.built_at
    ).order_by("name", "id")
    for account in accounts.iterator(chunk_size=1000):
        findings.count("service accounts")
        overdue, dormant = account.overdue, account.dormant
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


def register() -> None:
    """Add the service accounts to every evidence package (called from the app's ``ready``)."""
    register_evidence_file(
        EvidenceFile(
            "service-accounts.csv", 40, FileFormat.CSV, service_account_rows, SERVICE_ACCOUNTS_HEADER
        )
    )
