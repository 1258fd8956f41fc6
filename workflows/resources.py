"""Workflow models as governed resources; workflows and integrations are described to the policies."""

from functools import partial

from governance.access.policies import region_list_filter
from governance.core import resources as access_resources
from governance.core.resources import Resource


def _workflow_entity(workflow):
    attributes = {
        "data_region": workflow.data_region,
        "handles_pii": workflow.handles_pii,
        "environment": workflow.environment,
    }
    return "Workflow", attributes, workflow.workspace


def _through_workflow(obj):
    """Versions and changes carry their workflow's data: the policies see them as that workflow."""
    return _workflow_entity(obj.workflow)


_workflow_list_policy = partial(
    region_list_filter, region_field="workflow__data_region", workspace_field="workflow__workspace"
)


def _integration_entity(integration):
    return "Integration", {"sensitivity": integration.sensitivity}, integration.workspace


def register() -> None:
    """Register the workflow models (called from the app's ``ready``)."""
    from workflows.models import ChangeRequest, Integration, IntegrationRequest, Workflow, WorkflowVersion

    access_resources.register(
        Resource(
            Workflow,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "workflow.view", "add": "workflow.edit", "change": "workflow.edit"},
            policy_entity=_workflow_entity,
            list_policy=region_list_filter,
        )
    )
    access_resources.register(
        Resource(
            WorkflowVersion,
            organization_field="workflow__workspace__organization",
            workspace_field="workflow__workspace",
            actions={"view": "workflow.view"},
            policy_entity=_through_workflow,
            list_policy=_workflow_list_policy,
        )
    )
    access_resources.register(
        Resource(
            ChangeRequest,
            organization_field="workflow__workspace__organization",
            workspace_field="workflow__workspace",
            actions={"view": "workflow.view"},
            policy_entity=_through_workflow,
            list_policy=_workflow_list_policy,
        )
    )
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
    _register_service_accounts()
    _register_credential_runbooks()


def _register_network_boundary() -> None:
    """Connector types (vetted by officers) and allow-list rules (platform administrators)."""
    from workflows.models import ConnectorType, NetworkAllowRule

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


def _register_service_accounts() -> None:
    """Service accounts and their tokens: managed by workspace owners, in their workspace only.

    Tokens are listed through their account; nobody edits a service account's row by hand
    (its changes are the services' actions), so the admin offers view and add only.
    """
    from workflows.models import ServiceAccount, ServiceAccountToken

    access_resources.register(
        Resource(
            ServiceAccount,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "service_account.manage", "add": "service_account.manage"},
        )
    )
    access_resources.register(
        Resource(
            ServiceAccountToken,
            organization_field="service_account__workspace__organization",
            workspace_field="service_account__workspace",
            actions={"view": "service_account.manage"},
        )
    )


def _register_credential_runbooks() -> None:
    """Incident runbooks: started and followed by owners and compliance officers of the workspace."""
    from workflows.models import CredentialRunbook

    access_resources.register(
        Resource(
            CredentialRunbook,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "credential.rotate_all", "add": "credential.rotate_all"},
        )
    )
