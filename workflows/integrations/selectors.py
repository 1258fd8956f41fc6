"""Reads of integrations and the requests to connect them."""

from __future__ import annotations

from django.db.models import QuerySet

from governance.access.queries import restrict


def integration_requests_visible_to(actor) -> QuerySet:
    """Requests the actor made, must decide as the requester's manager, or manages as an owner."""
    from django.db.models import Q

    from workflows.integrations.models import IntegrationRequest

    managed = restrict(IntegrationRequest.objects.all(), actor, "integration.manage").values("pk")
    return IntegrationRequest.objects.filter(
        Q(requested_by=actor) | Q(requested_by__manager=actor) | Q(pk__in=managed),
        workspace__organization_id=actor.organization_id,
    ).select_related("workspace", "requested_by", "decided_by", "integration")
