"""Halts in the test world, for the matrices: one in force per workspace (own, sibling, foreign)."""

from __future__ import annotations

from workflows.executions.models import Halt


def halts_of(world) -> dict[str, dict]:
    made = getattr(world, "halts", None)
    if made is not None:
        return made
    made = {
        "workflows.halt": {
            scope: Halt.objects.create(
                organization_id=workspace.organization_id, workspace=workspace, scope="workspace",
                reason=f"{scope} incident", raised_by=raiser,
            )
            for scope, workspace, raiser in (
                ("own", world.ws, world.users["compliance_officer"]),
                ("sibling", world.sibling, world.sibling_membership.user),
                ("foreign", world.foreign, world.foreign_user),
            )
        }
    }  # fmt: skip
    world.halts = made
    return made
