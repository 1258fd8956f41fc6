"""Reads of service accounts: those an actor manages, and the counts of the posture panel."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet

from governance.access.queries import restrict


def service_accounts_visible_to(actor) -> QuerySet:
    """Service accounts of the workspaces where the actor manages them."""
    from workflows.service_accounts.models import ServiceAccount

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
    from workflows.service_accounts.models import DisabledReason

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
