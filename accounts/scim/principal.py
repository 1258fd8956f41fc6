"""The principal a SCIM token acts as: what the decision point and the ledger see of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from governance.core.tokens import MachinePrincipal, TokenFormat

# What provisioning needs: read and manage the accounts of its own organisation.
SCIM_ACTIONS = frozenset({"user.view", "user.manage"})
SCIM_TOKENS = TokenFormat("gpscim_")


@dataclass(frozen=True, kw_only=True)
class ScimPrincipal(MachinePrincipal):
    """An identity provider signed in with a SCIM token, as the SCIM views' ``request.user``.

    It is a machine identity like a service account's, so it takes the same road: the decision
    point's service-account rule (``is_service_account``), here confined to an organisation
    (``workspace_id`` None) instead of a workspace, with the two account actions only; the
    ledger records it as actor type ``service_account`` and names it by ``label`` (which carries
    the token's public prefix, never the token). It has no password, roles or grants, and no
    way into the control panel or the rest of the API.
    """

    workspace_id: None = None
    scopes: tuple[str, ...] = ("scim",)
    allowed_actions: frozenset[str] = SCIM_ACTIONS

    is_scim: ClassVar[bool] = True

    @property
    def label(self) -> str:
        return f"SCIM token {self.name} ({SCIM_TOKENS.shows(self.token_prefix)})"
