"""Tenancy's records in evidence packages: the workspace's members, and the membership events of
the period read from the ledger's canonical records.

Registered in the app's ``ready`` (``register``); the package builder writes them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Q

from audit.canonical import parse
from audit.collectors import EvidenceFile, FileFormat, Findings, Scope, register_evidence_file
from audit.models import AuditEvent
from governance.tenancy.models import Membership

MEMBERSHIP_EVENTS = "membership."  # the prefix of TenancyEvent.MEMBERSHIP_* codes


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
    """The workspace's members now, and the organisation-wide roles that reach into it (an
    organisation's package: those roles alone)."""
    organization_wide = Q(workspace__isnull=True, organization_id=scope.organization.pk)
    rows = (
        Membership.objects.filter(
            organization_wide if scope.is_organization else Q(workspace=scope.workspace) | organization_wide
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
    """Membership events of the period, read from the ledger's canonical records (an
    organisation's package: the changes of organisation-wide roles)."""
    events = (
        AuditEvent.objects.filter(
            scope.in_period("occurred_at"), scope.owns(), action__startswith=MEMBERSHIP_EVENTS
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


def register() -> None:
    """Add the app's files to every evidence package (called from the app's ``ready``)."""
    register_evidence_file(
        EvidenceFile(
            "memberships.csv", 20, FileFormat.CSV, membership_rows, MEMBERSHIPS_HEADER, organization=True
        )
    )
    register_evidence_file(
        EvidenceFile(
            "role-changes.csv", 30, FileFormat.CSV, role_change_rows, ROLE_CHANGES_HEADER, organization=True
        )
    )
