"""Connector types, allow-list rules and integrations in the test world, for the matrices."""

from __future__ import annotations

from workflows.integrations.models import ConnectorType, Integration, NetworkAllowRule


def network_boundary_of(world) -> dict[str, dict]:
    """Per admin label, the objects of each scope (made once per world): connector types and
    allow-list rules belong to an organisation (own, foreign), integrations to a workspace."""
    made = getattr(world, "network_boundary", None)
    if made is not None:
        return made
    organizations = {
        "own": (world.org, world.users["platform_admin"]),
        "foreign": (world.foreign_org, world.foreign_user),
    }
    made = {
        "workflows.connectortype": {
            scope: ConnectorType.objects.create(organization=org, code="crm-api", name=f"{scope} CRM API",
                                                maintainer="Vendor Inc.")
            for scope, (org, _) in organizations.items()
        },
        "workflows.networkallowrule": {
            scope: NetworkAllowRule.objects.create(organization=org, destination="10.0.0.0/24", reason="on-premises",
                                                   created_by=creator)
            for scope, (org, creator) in organizations.items()
        },
        "workflows.integration": {
            scope: Integration.objects.create(workspace=workspace, name=f"{scope} ERP", slug="nb-erp", kind="erp")
            for scope, workspace in (("own", world.ws), ("sibling", world.sibling), ("foreign", world.foreign))
        },
    }  # fmt: skip
    world.network_boundary = made
    return made
