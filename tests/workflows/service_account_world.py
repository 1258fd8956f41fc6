"""Service accounts in the test world (own, sibling and foreign workspace), for the matrices."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from workflows.integrations.models import Integration
from workflows.service_accounts.models import ServiceAccount


def service_accounts_of(world) -> dict[str, ServiceAccount]:
    """One account per workspace of the world, each for its own integration (made once per world)."""
    accounts = getattr(world, "service_accounts", None)
    if accounts is not None:
        return accounts
    accounts = {}
    now = timezone.now()
    for scope, workspace, creator in (
        ("own", world.ws, world.users["workspace_owner"]),
        ("sibling", world.sibling, world.sibling_membership.user),
        ("foreign", world.foreign, world.foreign_user),
    ):
        integration = Integration.objects.create(
            workspace=workspace, name=f"{scope} CRM", slug="sa-crm", kind="crm"
        )
        accounts[scope] = ServiceAccount.objects.create(
            workspace=workspace, integration=integration, name=f"{scope} robot", scopes=["workflows:read"],
            created_by=creator, rotation_due_at=now + timedelta(days=90),
        )  # fmt: skip
    world.service_accounts = accounts
    return accounts


def free_integration(world, scope: str) -> Integration:
    """An integration of the scope's workspace that has no service account yet."""
    workspace = {"own": world.ws, "sibling": world.sibling, "foreign": world.foreign}[scope]
    return Integration.objects.create(workspace=workspace, name="ERP", slug="sa-erp", kind="erp")
