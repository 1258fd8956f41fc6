"""Reads of the access app that more than one place needs."""

from __future__ import annotations

import difflib

from django.db.models import Q, QuerySet

from governance.access.models import Policy


def policies_enabled_for(organization_id: int | None) -> QuerySet[Policy]:
    """The enabled policies an organisation's workspaces are under: the shipped ones and its own."""
    return Policy.objects.filter(
        Q(organization__isnull=True) | Q(organization_id=organization_id), enabled=True
    )


def policies_enabled_in(workspace) -> QuerySet[Policy]:
    """The policies in force in one workspace: enabled for its organisation, not switched off in it."""
    return policies_enabled_for(workspace.organization_id).exclude(disabled_workspaces=workspace)


def policy_text_diff(before: str, after: str) -> list[str]:
    """A unified diff of a policy's text, as reviewers and the ledger read it."""
    return list(
        difflib.unified_diff(before.splitlines(), after.splitlines(), "in force", "proposed", lineterm="")
    )
