"""The daily sweep of service accounts, and the notices to workspace owners it sends after commit."""

from __future__ import annotations

from django.core.mail import send_mail

from governance.core.jobs import shared_task
from governance.tenancy.models import Membership
from governance.tenancy.roles import WORKSPACE_OWNER
from workflows.service_accounts import services
from workflows.service_accounts.models import ServiceAccount


@shared_task(name="workflows.service_accounts_sweep", ignore_result=True)
def service_accounts_sweep() -> dict[str, int]:
    """The daily sweep (Celery beat): disable overdue and dormant accounts, warn of rotations due."""
    result = services.service_accounts_sweep()
    return {
        "warned": len(result.warned),
        "disabled_overdue": len(result.disabled_overdue),
        "disabled_dormant": len(result.disabled_dormant),
    }


@shared_task(name="workflows.notify_service_account", ignore_result=True)
def notify_service_account(kind: str, account_id: int) -> int:
    """Tell the workspace's owners that an account's rotation is due soon, or that it was disabled."""
    account = ServiceAccount.objects.select_related("workspace", "integration").get(pk=account_id)
    owners = Membership.objects.filter(workspace_id=account.workspace_id).holding(WORKSPACE_OWNER).emails()
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
