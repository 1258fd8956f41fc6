"""The access app's record in evidence packages: the attribute policies in force in the workspace.

Registered in the app's ``ready`` (``register``); the package builder writes it."""

from __future__ import annotations

from typing import Any

from audit.collectors import EvidenceFile, FileFormat, Findings, Scope, register_evidence_file
from governance.access.selectors import policies_enabled_in


def policies_in_force(scope: Scope, findings: Findings) -> list[dict[str, Any]]:
    """The enabled policies (shipped and the organisation's) not switched off in this workspace.

    The selection the decision point compiles, with the names, versions and texts an auditor
    reads rather than the compiled form.
    """
    rows = policies_enabled_in(scope.workspace).order_by("name", "id")
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


def register() -> None:
    """Add the app's file to every evidence package (called from the app's ``ready``)."""
    register_evidence_file(EvidenceFile("policies.json", 60, FileFormat.JSON_DOCUMENT, policies_in_force))
