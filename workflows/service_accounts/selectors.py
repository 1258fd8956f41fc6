"""Reads of service accounts: those an actor manages, the posture panel's counts, and the sweep's
dormant and due-soon accounts."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from governance.access.decision import decide
from governance.access.queries import restrict
from workflows.service_accounts.models import SERVICE_ACCOUNT_SCOPES, DisabledReason, ServiceAccount
from workflows.service_accounts.principals import ServiceAccountPrincipal


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


def dormancy_start(now: datetime) -> datetime:
    """An account with no activity since this moment is dormant (``SERVICE_ACCOUNT_DORMANT_DAYS``)."""
    return now - timedelta(days=settings.SERVICE_ACCOUNT_DORMANT_DAYS)


def overdue_accounts(queryset, now: datetime):
    """The active accounts of ``queryset`` whose rotation due date has passed."""
    return queryset.filter(_overdue_q(now))


def dormant_accounts(queryset, now: datetime):
    """The active accounts of ``queryset`` with no activity since the dormancy period began."""
    return queryset.alias(activity=last_activity()).filter(_dormant_q(now))


def accounts_with_rotation_state(queryset, now: datetime):
    """``queryset`` with each account's ``activity`` (``last_activity``), whether its rotation is
    ``overdue`` and whether it is ``dormant`` now (by the sweep's rules, or disabled as dormant)."""
    return queryset.annotate(activity=last_activity()).annotate(
        overdue=ExpressionWrapper(_overdue_q(now), output_field=BooleanField()),
        dormant=ExpressionWrapper(
            _dormant_q(now) | Q(disabled_reason=DisabledReason.DORMANT), output_field=BooleanField()
        ),
    )


def _overdue_q(now: datetime) -> Q:
    """Overdue for rotation: active, and the due date has passed (the sweep and the evidence)."""
    return Q(is_active=True, rotation_due_at__lte=now)


def _dormant_q(now: datetime) -> Q:
    """Dormant: active, without activity since the dormancy period began (needs ``activity``)."""
    return Q(is_active=True, activity__lt=dormancy_start(now))


def rotation_due_soon(queryset, now: datetime):
    """The accounts of ``queryset`` whose rotation falls due within the warning period."""
    horizon = now + timedelta(days=settings.SERVICE_ACCOUNT_ROTATION_WARNING_DAYS)
    return queryset.filter(rotation_due_at__gt=now, rotation_due_at__lte=horizon)


def acting_account(integration, action: str) -> tuple[ServiceAccountPrincipal | None, str]:
    """The principal a workflow step acts as through ``integration`` — its one service account —
    asked of the decision point for ``action`` (``integration.read`` or ``integration.write``), or
    the sentence saying why the step may not act: no account, a disabled one, a missing scope."""
    account = ServiceAccount.objects.select_related("workspace").filter(integration=integration).first()
    if account is None:
        return None, (
            f"The integration {integration.slug!r} has no service account. A workflow's steps act as the "
            "integration's own service account; its workspace owner creates one in the control panel."
        )
    principal = ServiceAccountPrincipal.of(account, token_prefix="")
    decision = decide(principal, action, integration)
    if decision.allowed:
        return principal, ""
    scope = next((scope for scope, code in SERVICE_ACCOUNT_SCOPES.items() if code == action), action)
    why = "; ".join(reason.removeprefix(f"{principal.label}: ") for reason in decision.reasons)
    return None, (
        f"The step acts as {principal.label} of the integration {integration.slug!r}, and the decision "
        f"point refused {action}: {why}. The account needs the scope {scope!r} and must be active."
    )
