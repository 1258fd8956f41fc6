"""Evidence orders in the test world, for the admin matrix: one of each workspace (own, sibling and
foreign) and one of each organisation's own events (``org``: Acme's, ``foreign_org``: Globex's)."""

from __future__ import annotations

from audit.evidence.orders import utc_today
from audit.models import EvidenceOrder


def evidence_orders_of(world) -> dict[str, dict[str, object]]:
    """Per scope, one order: the auditor's in the own workspace, others' in the sibling and foreign
    workspaces, the organisation auditor's of Acme's own events and a Globex user's of Globex's
    (rows written directly: the matrix looks at them, it does not build them)."""
    made = getattr(world, "evidence_orders", None)
    if made is not None:
        return made
    today = utc_today()
    made = {"audit.evidenceorder": {}}
    for scope, organization, workspace, requester in (
        ("own", world.org, world.ws, world.users["auditor"]),
        ("sibling", world.org, world.sibling, world.sibling_membership.user),
        ("foreign", world.foreign_org, world.foreign, world.foreign_user),
        ("org", world.org, None, world.users["organization_auditor"]),
        ("foreign_org", world.foreign_org, None, world.foreign_user),
    ):
        made["audit.evidenceorder"][scope] = EvidenceOrder.objects.create(
            requester=requester, organization=organization, workspace=workspace,
            period_start=today, period_end=today,
        )  # fmt: skip
    world.evidence_orders = made
    return made
