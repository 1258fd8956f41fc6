"""Notifications about workflow changes, sent after commit."""

from __future__ import annotations

from celery import shared_task
from django.core.mail import send_mail

from workflows.models import ChangeRequest


@shared_task(name="workflows.notify_change", ignore_result=True)
def notify_change(kind: str, change_id: int) -> int:
    """Reviewers hear about a submission; the author hears about each decision."""
    from workflows.services import reviewers_of

    change = ChangeRequest.objects.select_related("workflow", "author__manager").get(pk=change_id)
    if kind == "submitted":
        recipients = reviewers_of(change)
        subject = f"Review requested: {change.workflow} — {change.summary}"
        body = (
            f"{change.author} submitted version {change.version.number} of {change.workflow}.\n"
            f"Approvals needed: {', '.join(t['code'] for t in change.required_tiers)}."
        )
    else:
        recipients = [change.author.email]
        subject = f"Your change to {change.workflow} is {change.get_state_display().lower()}"
        latest = change.approvals.order_by("-decided_at").first()
        body = (
            f"{latest.reviewer} decided the {latest.tier} approval: {latest.comment}" if latest else subject
        )
    if recipients:
        send_mail(subject, body, None, recipients)
    return len(recipients)


@shared_task(name="workflows.notify_integration_request", ignore_result=True)
def notify_integration_request(request_id: int) -> int:
    """Ask the requester's manager to decide a request to connect a financial or HR system."""
    from workflows.models import IntegrationRequest

    request = IntegrationRequest.objects.select_related("requested_by__manager", "workspace").get(
        pk=request_id
    )
    manager = request.requested_by.manager
    if manager is None:
        return 0
    send_mail(
        f"Approval needed: connect {request.name} in {request.workspace}",
        f"{request.requested_by} asks to connect {request.name} ({request.get_sensitivity_display()}).\n\n"
        f"Why: {request.reason}\n\nDecide at /workflows/integrations/requests/{request.pk}/",
        None,
        [manager.email],
    )
    return 1


# --- Service accounts ----------------------------------------------------------------------------


@shared_task(name="workflows.service_accounts_sweep", ignore_result=True)
def service_accounts_sweep() -> dict[str, int]:
    """The daily sweep (Celery beat): disable overdue and dormant accounts, warn of rotations due."""
    from workflows.service_accounts import service_accounts_sweep as sweep

    result = sweep()
    return {
        "warned": len(result.warned),
        "disabled_overdue": len(result.disabled_overdue),
        "disabled_dormant": len(result.disabled_dormant),
    }


@shared_task(name="workflows.notify_service_account", ignore_result=True)
def notify_service_account(kind: str, account_id: int) -> int:
    """Tell the workspace's owners that an account's rotation is due soon, or that it was disabled."""
    from governance.tenancy.models import Membership
    from governance.tenancy.roles import WORKSPACE_OWNER
    from workflows.models import ServiceAccount

    account = ServiceAccount.objects.select_related("workspace", "integration").get(pk=account_id)
    owners = sorted(
        set(
            Membership.objects.filter(
                workspace_id=account.workspace_id, role_id=WORKSPACE_OWNER, user__is_active=True
            ).values_list("user__email", flat=True)
        )
    )
    if not owners:
        return 0
    due = account.rotation_due_at.strftime("%Y-%m-%d %H:%M UTC")
    if kind == "rotation_warning":
        subject = f"Rotate the token of service account {account} (due {due})"
        body = (
            f"The token of {account} ({account.integration} in {account.workspace}) must be rotated by "
            f"{due}. After that the account is disabled automatically."
        )
    else:
        subject = f"Service account {account} was disabled ({account.get_disabled_reason_display().lower()})"
        body = (
            f"{account} ({account.integration} in {account.workspace}) was disabled: "
            f"{account.get_disabled_reason_display()}. Only a workspace owner can reactivate it."
        )
    send_mail(subject, body, None, owners)
    return len(owners)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def credential_runbook_run(runbook_id: int) -> str:
    """Work through the incident runbook; a restarted worker resumes at the next item."""
    from workflows.credentials import credential_runbook_advance

    return credential_runbook_advance(runbook_id=runbook_id).status


@shared_task
def credential_versions_expire_task() -> int:
    """Beat: revoke credential versions whose grace period is over, erasing their values."""
    from workflows.credentials import credential_versions_expire

    return credential_versions_expire()
