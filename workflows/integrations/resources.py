"""Integrations, their requests, connector types and allow-list rules as governed resources;
integrations are described to the policies."""

from governance.core import resources as access_resources
from governance.core.resources import Resource
from workflows.integrations.models import ConnectorType, Integration, IntegrationRequest, NetworkAllowRule


def _integration_entity(integration):
    return "Integration", {"sensitivity": integration.sensitivity}, integration.workspace


def register() -> None:
    """Register the integration models (called from the app's ``ready``)."""
    access_resources.register(
        Resource(
            Integration,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "workflow.view", "add": "integration.manage", "change": "integration.manage"},
            policy_entity=_integration_entity,
        )
    )
    access_resources.register(
        Resource(
            IntegrationRequest,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "integration.manage"},
        )
    )
    _register_network_boundary()


def _register_network_boundary() -> None:
    """Connector types (vetted by officers) and allow-list rules (platform administrators)."""
    access_resources.register(
        Resource(
            ConnectorType,
            organization_field="organization",
            workspace_field=None,
            actions={"view": "connector.vet", "add": "connector.vet", "change": "connector.vet"},
        )
    )
    access_resources.register(
        Resource(
            NetworkAllowRule,
            organization_field="organization",
            workspace_field=None,
            actions={"view": "network.allowlist", "add": "network.allowlist", "delete": "network.allowlist"},
        )
    )
