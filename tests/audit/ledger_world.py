"""Ledger events in the test world, for the admin matrix: the world's events of the own, sibling
and foreign workspaces, and one event of each organisation itself (no workspace: ``org`` is
Acme's, ``foreign_org`` Globex's), such as a sign-in."""

from __future__ import annotations

from tests.factories import AuditEventFactory


def ledger_events_of(world) -> dict[str, dict[str, object]]:
    made = getattr(world, "ledger_events", None)
    if made is not None:
        return made
    own_events = {
        scope: AuditEventFactory(
            organization_id=organization.pk,
            workspace=None,
            category="authentication",
            action="login.succeeded",
        )
        for scope, organization in (("org", world.org), ("foreign_org", world.foreign_org))
    }
    made = {"audit.auditevent": {**world.events, **own_events}}
    world.ledger_events = made
    return made
