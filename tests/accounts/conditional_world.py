"""Conditional-access policies in the test world, for the admin matrix: one per organisation."""

from __future__ import annotations

from accounts.models import ConditionalAccessPolicy


def conditional_access_of(world) -> dict[str, dict]:
    """The policies of the own and the foreign organisation (made once per world)."""
    made = getattr(world, "conditional_access", None)
    if made is None:
        made = {
            "accounts.conditionalaccesspolicy": {
                scope: ConditionalAccessPolicy.objects.create(
                    organization=org, denied_networks=["192.0.2.0/24"]
                )
                for scope, org in (("own", world.org), ("foreign", world.foreign_org))
            }
        }
        world.conditional_access = made
    return made
