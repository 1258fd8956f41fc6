"""Reads of service accounts: those an actor manages, the posture panel's counts, and the sweep's
dormant and due-soon accounts."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from governance.access.decision import decide
from governance.access.queries import restrict
from workflows.service_accounts.models import DisabledReason, ServiceAccount


def service_accounts_visible_to(actor) -> QuerySet:
    """Service accounts of the workspaces where the actor manages them."""
    return restrict(
        ServiceAccount.objects.select_related("workspace", "integration"), actor, "service_account.manage"
    )


def service_account_posture(actor, *, now=None) -> dict[str, int] | None:
    """Counts for the dashboard (dormant, rotation overdue, rotation due soon) over the service
    accounts the actor may see; None when the actor manages none anywhere."""
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


def last_activity():
    """The later of the last use and the start of the active period (creation or reactivation)."""
    return Greatest(Coalesce("last_used_at", "active_since"), "active_since")


def dormant_accounts(queryset, dormant_since: datetime):
    """The accounts of ``queryset`` with no activity since ``dormant_since``."""
    return queryset.alias(activity=last_activity()).filter(activity__lt=dormant_since)


def rotation_due_soon(queryset, now: datetime):
    """The accounts of ``queryset`` whose rotation falls due within the warning period."""
    horizon = now + timedelta(days=settings.SERVICE_ACCOUNT_ROTATION_WARNING_DAYS)
    return queryset.filter(rotation_due_at__gt=now, rotation_due_at__lte=horizon)
