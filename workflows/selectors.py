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


def integration_requests_visible_to(actor) -> QuerySet:
    """Requests the actor made, must decide as the requester's manager, or manages as an owner."""
    from django.db.models import Q

    from workflows.models import IntegrationRequest

    managed = restrict(IntegrationRequest.objects.all(), actor, "integration.manage").values("pk")
    return IntegrationRequest.objects.filter(
        Q(requested_by=actor) | Q(requested_by__manager=actor) | Q(pk__in=managed),
        workspace__organization_id=actor.organization_id,
    ).select_related("workspace", "requested_by", "decided_by", "integration")


# --- Service accounts ----------------------------------------------------------------------------


def service_accounts_visible_to(actor) -> QuerySet:
    """Service accounts of the workspaces where the actor manages them."""
    from workflows.models import ServiceAccount

    return restrict(
        ServiceAccount.objects.select_related("workspace", "integration"), actor, "service_account.manage"
    )


def service_account_posture(actor, *, now=None) -> dict[str, int] | None:
    """Counts for the dashboard (dormant, rotation overdue, rotation due soon) over the service
    accounts the actor may see; None when the actor manages none anywhere."""
    from django.conf import settings
    from django.db.models import Count, Q
    from django.utils import timezone

    from governance.access.decision import decide
    from workflows.models import DisabledReason

    if not decide(actor, "service_account.manage").allowed:
        return None
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.SERVICE_ACCOUNT_ROTATION_WARNING_DAYS)
    overdue = Q(rotation_due_at__lte=now) & (
        Q(is_active=True) | Q(disabled_reason=DisabledReason.ROTATION_OVERDUE)
    )
    return service_accounts_visible_to(actor).aggregate(
        dormant=Count("pk", filter=Q(is_active=False, disabled_reason=DisabledReason.DORMANT)),
        overdue=Count("pk", filter=overdue),
        due_soon=Count("pk", filter=Q(is_active=True, rotation_due_at__gt=now, rotation_due_at__lte=horizon)),
    )
