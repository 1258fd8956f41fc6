"""The outbound client of integrations: the kernel's client, with refusals recorded in the ledger
as ``integration.outbound_refused`` against the integration and its workspace."""

from __future__ import annotations

from typing import Any

from audit.models import Outcome
from audit.services import audit_event_record
from governance.core.outbound.client import OutboundClient
from workflows.events import WorkflowEvent


class IntegrationClient(OutboundClient):
    """Calls an integration's endpoints inside the network boundary; ``integration`` and ``actor``
    name who and what a refusal is recorded against."""

    def __init__(self, *, organization: Any, integration: Any = None, actor: Any = None, **options: Any):
        super().__init__(organization=organization, record_refusal=self._record_refusal, **options)
        self.integration = integration
        self.actor = actor

    @classmethod
    def for_integration(cls, integration: Any, **options: Any) -> IntegrationClient:
        """A client with the integration's organisation and pins."""
        return cls(
            organization=integration.workspace.organization,
            integration=integration,
            spki_pins=integration.spki_pins or (),
            **options,
        )

    def _record_refusal(self, message: str, shown: str) -> None:
        integration = self.integration
        audit_event_record(
            action=WorkflowEvent.INTEGRATION_OUTBOUND_REFUSED,
            actor=self.actor,
            target=integration,
            organization_id=getattr(self.organization, "pk", self.organization),
            workspace_id=getattr(integration, "workspace_id", None),
            outcome=Outcome.DENIED,
            data={"url": shown, "reason": message},
            require_transaction=False,
        )
