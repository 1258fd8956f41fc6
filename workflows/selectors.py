"""Reads of workflows and changes, through the decision point's visible-to filter."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Exists, OuterRef, QuerySet

from governance.access.queries import restrict
from workflows.models import Approval, ChangeRequest, ChangeState, Workflow

REVIEW_SLA = timedelta(days=2)


def workflows_visible_to(actor) -> QuerySet[Workflow]:
    return restrict(
        Workflow.objects.select_related("workspace", "active_version", "owner"), actor, "workflow.view"
    )


def changes_visible_to(actor) -> QuerySet[ChangeRequest]:
    return restrict(
        ChangeRequest.objects.select_related("workflow__workspace", "version", "author"),
        actor,
        "workflow.view",
    )


def inbox_for(actor) -> QuerySet[ChangeRequest]:
    """Changes waiting for a review the actor may give, oldest first (not their own, not yet decided by them)."""
    reviewable = (
        restrict(ChangeRequest.objects.all(), actor, "workflow.view")
        .filter(state__in=(ChangeState.SUBMITTED, ChangeState.IN_REVIEW))
        .exclude(author=actor)
    )
    mine = Approval.objects.filter(change=OuterRef("pk"), reviewer=actor)
    return (reviewable.filter(~Exists(mine)).select_related("workflow__workspace", "version", "author")
            .order_by("submitted_at", "id"))  # fmt: skip


def integration_requests_visible_to(actor) -> QuerySet:
    """Requests the actor made, must decide as the requester's manager, or manages as an owner."""
    from django.db.models import Q

    from workflows.models import IntegrationRequest

    managed = restrict(IntegrationRequest.objects.all(), actor, "integration.manage").values("pk")
    return IntegrationRequest.objects.filter(
        Q(requested_by=actor) | Q(requested_by__manager=actor) | Q(pk__in=managed),
        workspace__organization_id=actor.organization_id,
    ).select_related("workspace", "requested_by", "decided_by", "integration")
