"""Evidence orders in the test world (own, sibling and foreign workspace), for the admin matrix."""

from __future__ import annotations

from audit.evidence.orders import utc_today
from audit.models import EvidenceOrder


def evidence_orders_of(world) -> dict[str, dict[str, object]]:
    """Per scope, one order: the auditor's in the own workspace, and others' in the sibling and foreign
    workspaces (rows written directly: the matrix looks at them, it does not build them)."""
    made = getattr(world, "evidence_orders", None)
    if made is not None:
        return made
    today = utc_today()
    made = {"audit.evidenceorder": {}}
    for scope, workspace, requester in (("own", world.ws, world.users["auditor"]),
                                        ("sibling", world.sibling, world.sibling_membership.user),
                                        ("foreign", world.foreign, world.foreign_user)):  # fmt: skip
        made["audit.evidenceorder"][scope] = EvidenceOrder.objects.create(
            requester=requester, organization_id=workspace.organization_id, workspace=workspace,
            period_start=today, period_end=today,
        )  # fmt: skip
    world.evidence_orders = made
    return made
