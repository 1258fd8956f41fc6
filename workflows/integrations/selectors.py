"""Reads of integrations and the requests to connect them."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from governance.access.queries import restrict
from workflows.integrations.models import Integration, IntegrationRequest, NetworkAllowRule, RequestStatus


def integration_requests_visible_to(actor) -> QuerySet:
    """Requests the actor made, must decide as the requester's manager, or manages as an owner."""
    managed = restrict(IntegrationRequest.objects.all(), actor, "integration.manage").values("pk")
    return IntegrationRequest.objects.filter(
        Q(requested_by=actor) | Q(requested_by__manager=actor) | Q(pk__in=managed),
        workspace__organization_id=actor.organization_id,
    ).select_related("workspace", "requested_by", "decided_by", "integration")


def integrations_by_slug(workspace) -> dict[str, Integration]:
    """The workspace's integrations by slug (how workflow steps refer to them)."""
    return {integration.slug: integration for integration in Integration.objects.filter(workspace=workspace)}


def integration_manager_approved(integration: Integration) -> bool:
    """Whether the requester's manager approved connecting this integration (a recorded fact)."""
    return IntegrationRequest.objects.filter(
        integration=integration, status=RequestStatus.CONNECTED, decided_by__isnull=False
    ).exists()


def organization_allow_list(organization_id) -> list[str]:
    """The destinations an organisation's administrators allow-listed (``NetworkAllowRule``): the
    allow-list source the app registers with the network boundary (``governance.core.outbound``)."""
    return list(
        NetworkAllowRule.objects.filter(organization_id=organization_id).values_list("destination", flat=True)
    )
