"""The credentials in evidence packages: versions with fingerprints, statuses and dates, never a value.

Registered in the app's ``ready`` (``register``); the package builder writes them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from audit.collectors import EvidenceFile, FileFormat, Findings, Scope, register_evidence_file
from workflows.credentials.models import CredentialStatus, CredentialVersion

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


def register() -> None:
    """Add the credentials to every evidence package (called from the app's ``ready``)."""
    register_evidence_file(
        EvidenceFile("credentials.csv", 50, FileFormat.CSV, credential_rows, CREDENTIALS_HEADER)
    )
