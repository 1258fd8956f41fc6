"""Workflows, versions and changes as governed resources; workflows are described to the policies."""

from functools import partial

from governance.access.policies import region_list_filter
from governance.core import resources as access_resources
from governance.core.resources import Resource
from workflows.changes.models import ChangeRequest, Workflow, WorkflowVersion


def workflow_entity(workflow):
    """How the attribute policies see a workflow (and anything that carries its data)."""
    attributes = {
        "data_region": workflow.data_region,
        "handles_pii": workflow.handles_pii,
        "environment": workflow.environment,
    }
    return "Workflow", attributes, workflow.workspace


def _through_workflow(obj):
    """Versions and changes carry their workflow's data: the policies see them as that workflow."""
    return workflow_entity(obj.workflow)


_workflow_list_policy = partial(
    region_list_filter, region_field="workflow__data_region", workspace_field="workflow__workspace"
)


def register() -> None:
    """Register workflows, their versions and changes (called from the app's ``ready``)."""
    access_resources.register(
        Resource(
            Workflow,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "workflow.view", "add": "workflow.edit", "change": "workflow.edit"},
            policy_entity=workflow_entity,
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
