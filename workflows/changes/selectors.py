"""Reads of workflows and their changes, through the decision point's visible-to filter."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Exists, OuterRef, QuerySet

from governance.access.queries import restrict
from workflows.changes.models import Approval, ChangeRequest, ChangeState, Workflow

REVIEW_SLA = timedelta(days=2)


def workflows_visible_to(actor) -> QuerySet[Workflow]:
    return restrict(
        Workflow.objects.select_related("workspace", "active_version", "owner"), actor, "workflow.view"
    )


def changes_visible_to(actor) -> QuerySet[ChangeRequest]:
    """Changes of workflows the actor may see, and those whose author reports to the actor (the
    manager approval may fall to someone without a role in that workspace)."""
    from django.db.models import Q

    visible = restrict(ChangeRequest.objects.all(), actor, "workflow.view").values("pk")
    return ChangeRequest.objects.filter(
        Q(pk__in=visible)
        | Q(author__manager=actor, workflow__workspace__organization_id=actor.organization_id)
    ).select_related("workflow__workspace", "version", "author")


def inbox_for(actor) -> QuerySet[ChangeRequest]:
    """Changes waiting for a review the actor may give, oldest first (not their own, not yet decided by them)."""
    from django.db.models import Q

    by_role = restrict(ChangeRequest.objects.all(), actor, "workflow.view").values("pk")
    # A manager reviews only changes that need a manager's approval (the tiers are JSON text).
    as_manager = Q(author__manager=actor, required_tiers__icontains='"manager"')
    reviewable = ChangeRequest.objects.filter(
        Q(pk__in=by_role) | as_manager,
        workflow__workspace__organization_id=actor.organization_id,
        state__in=(ChangeState.SUBMITTED, ChangeState.IN_REVIEW),
    ).select_related("workflow__workspace", "version", "author")
    mine = Approval.objects.filter(change=OuterRef("pk"), reviewer=actor)
    return reviewable.exclude(author=actor).filter(~Exists(mine)).order_by("submitted_at", "id")
