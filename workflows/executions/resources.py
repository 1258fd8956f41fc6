"""Executions and step runs as governed resources: they carry their workflow's data, so the
attribute policies see them as that workflow."""

from functools import partial

from governance.access.policies import region_list_filter
from governance.core import resources as access_resources
from governance.core.resources import Resource
from workflows.changes.resources import workflow_entity
from workflows.executions.models import AIControls, Execution, Halt, HumanTask, StepRun


def _as_workflow(execution):
    return workflow_entity(execution.workflow)


def _step_as_workflow(step_run):
    return workflow_entity(step_run.execution.workflow)


def _task_as_workflow(task):
    return workflow_entity(task.execution.workflow)


def register() -> None:
    """Register executions and step runs (called from the app's ``ready``)."""
    access_resources.register(
        Resource(
            Execution,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "execution.view", "change": "execution.trigger"},
            policy_entity=_as_workflow,
            list_policy=partial(
                region_list_filter, region_field="workflow__data_region", workspace_field="workspace"
            ),
        )
    )
    access_resources.register(
        Resource(
            StepRun,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "execution.view"},
            policy_entity=_step_as_workflow,
            list_policy=partial(
                region_list_filter,
                region_field="execution__workflow__data_region",
                workspace_field="workspace",
            ),
        )
    )
    # Halts are seen by those who may raise or release them; an organisation's halt (no workspace)
    # by its platform administrators.
    access_resources.register(
        Resource(
            Halt,
            organization_field="organization",
            workspace_field="workspace",
            actions={"view": "execution.halt", "add": "execution.halt", "change": "execution.halt"},
        )
    )
    # A human task carries its run's data: seen with the run (``execution.view``); who may decide
    # it is the engine's rule (the named role, never the person who triggered the run).
    access_resources.register(
        Resource(
            HumanTask,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "execution.view"},
            policy_entity=_task_as_workflow,
            list_policy=partial(
                region_list_filter,
                region_field="execution__workflow__data_region",
                workspace_field="workspace",
            ),
        )
    )
    # A workspace's AI limits: set by those who may stop its runs (owners, compliance officers).
    access_resources.register(
        Resource(
            AIControls,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "execution.halt", "add": "execution.halt", "change": "execution.halt"},
        )
    )
