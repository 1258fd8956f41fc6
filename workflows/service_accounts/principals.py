"""The principal a service account acts as: what the decision point and the ledger see of it."""

from __future__ import annotations

from dataclasses import dataclass

from governance.core.tokens import MachinePrincipal, TokenFormat

SERVICE_ACCOUNT_TOKENS = TokenFormat("gpsa_")


@dataclass(frozen=True, kw_only=True)
class ServiceAccountPrincipal(MachinePrincipal):
    """A signed-in service account, as the API's ``request.user``.

    It is never a user: ``is_service_account`` sends every access question to the decision
    point's service-account rule (its scopes, its workspace), and the ledger names it by
    ``label``. It has no password, no roles, no grants and no way into the control panel.
    """

    workspace_id: int

    @classmethod
    def of(cls, account, *, token_prefix: str) -> ServiceAccountPrincipal:
        """The principal of ``account`` (a ``ServiceAccount`` with its workspace loaded)."""
        return cls(
            pk=account.pk,
            name=account.name,
            workspace_id=account.workspace_id,
            organization_id=account.workspace.organization_id,
            scopes=tuple(account.scopes),
            allowed_actions=account.allowed_actions,
            token_prefix=token_prefix,
            is_active=account.is_active,
        )

    @property
    def label(self) -> str:
        return f"service account {self.name} (#{self.pk})"
