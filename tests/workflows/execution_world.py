"""Runs in the test world (own, sibling and foreign workspace), for the matrices and sweeps.

The world's workflows are drafts that never ran, so each run here is written directly: a queued
execution of the workflow's first version with its first step pending. The step keeps no
inputs: nothing here is encrypted, so no data key is made (other worlds make their own)."""

from __future__ import annotations

from workflows.executions.models import Execution, StepRun


def executions_of(world) -> dict[str, Execution]:
    """One queued run per workspace of the world (made once per world)."""
    runs = getattr(world, "executions", None)
    if runs is not None:
        return runs
    runs = {}
    for scope, workflow in world.workflows.items():
        version = workflow.versions.order_by("number").first()
        execution = Execution.objects.create(
            workspace=workflow.workspace,
            workflow=workflow,
            version=version,
            trigger_source="manual:world",
            input_digest="0" * 64,
        )
        StepRun.objects.create(
            execution=execution,
            workspace=workflow.workspace,
            step_id=version.definition["steps"][0]["id"],
            step_type=version.definition["steps"][0]["type"],
        )
        runs[scope] = execution
    world.executions = runs
    return runs
