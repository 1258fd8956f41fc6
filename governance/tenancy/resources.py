"""Tenancy models as governed resources of the decision point."""

from governance.core import resources as access_resources
from governance.core.resources import Resource
from governance.tenancy.models import Membership, Organization, Role, Workspace


def register() -> None:
    """Register the tenancy models (called from the app's ``ready``)."""
    access_resources.register(
        Resource(
            Organization,
            organization_field="pk",
            workspace_field=None,
            actions={"view": "organization.view", "change": "organization.manage"},
        )
    )
    access_resources.register(
        Resource(
            Workspace,
            organization_field="organization",
            workspace_field="pk",
            actions={"view": "workspace.view", "add": "workspace.create", "change": "workspace.manage"},
            policy_entity=lambda ws: (
                "Workspace",
                {"data_region": ws.data_region, "time_zone": ws.time_zone},
                ws,
            ),
        )
    )
    access_resources.register(
        Resource(
            Membership,
            organization_field="organization",
            workspace_field="workspace",
            actions={
                "view": "membership.view",
                "add": "membership.manage",
                "change": "membership.manage",
                "delete": "membership.manage",
            },
        )
    )
    access_resources.register(
        Resource(Role, organization_field=None, workspace_field=None, actions={"view": "role.view"})
    )
