"""Workflow models as governed resources; workflows and integrations are described to the policies."""

from functools import partial

from governance.access import resources as access_resources
from governance.access.policies import region_list_filter
from governance.access.resources import Resource


def _workflow_entity(workflow):
    attributes = {"data_region": workflow.data_region, "handles_pii": workflow.handles_pii,
                  "environment": workflow.environment}  # fmt: skip
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

    access_resources.register(Resource(
        Workflow, organization_field="workspace__organization", workspace_field="workspace",
        actions={"view": "workflow.view", "add": "workflow.edit", "change": "workflow.edit"},
        policy_entity=_workflow_entity, list_policy=region_list_filter,
    ))  # fmt: skip
    access_resources.register(Resource(
        WorkflowVersion, organization_field="workflow__workspace__organization",
        workspace_field="workflow__workspace", actions={"view": "workflow.view"},
        policy_entity=_through_workflow, list_policy=_workflow_list_policy,
    ))  # fmt: skip
    access_resources.register(Resource(
        ChangeRequest, organization_field="workflow__workspace__organization",
        workspace_field="workflow__workspace", actions={"view": "workflow.view"},
        policy_entity=_through_workflow, list_policy=_workflow_list_policy,
    ))  # fmt: skip
    access_resources.register(Resource(
        Integration, organization_field="workspace__organization", workspace_field="workspace",
        actions={"view": "workflow.view", "add": "integration.manage", "change": "integration.manage"},
        policy_entity=_integration_entity,
    ))  # fmt: skip
    access_resources.register(Resource(
        IntegrationRequest, organization_field="workspace__organization", workspace_field="workspace",
        actions={"view": "integration.manage"},
    ))  # fmt: skip
