"""Reads of single sign-on: the SCIM groups a person is in."""

from __future__ import annotations

from accounts.models import User


def scim_group_names(user: User) -> list[str]:
    """The names under which the identity provider pushed ``user``'s groups over SCIM: each
    group's ``displayName`` and, when set, its ``externalId`` (Entra ID's ID tokens name groups by
    object id, which it sends to SCIM as the external id)."""
    names: set[str] = set()
    for display_name, external_id in user.scim_groups.values_list("display_name", "external_id"):
        names.add(display_name)
        if external_id:
            names.add(external_id)
    return sorted(names)
