"""Notifications of access changes, sent after the change committed."""

from __future__ import annotations

from django.core.mail import send_mail

from governance.access.models import OnCallOverride, PolicyChange
from governance.core.jobs import shared_task
from governance.tenancy.models import Membership
from governance.tenancy.roles import COMPLIANCE_OFFICER


def _officers(organization_id: int, workspace_id: int | None = None) -> list[str]:
    memberships = Membership.objects.holding(COMPLIANCE_OFFICER).filter(organization_id=organization_id)
    if workspace_id is not None:
        memberships = memberships.filter(workspace_id=workspace_id)
    return memberships.emails()


@shared_task(name="access.notify_policy_change", ignore_result=True)
def notify_policy_change(change_id: int) -> int:
    """Tell the organisation's compliance officers that a policy change waits for a second officer."""
    change = PolicyChange.objects.select_related("proposed_by").get(pk=change_id)
    recipients = [email for email in _officers(change.organization_id) if email != change.proposed_by.email]
    if recipients:
        send_mail(
            f"Policy change to review: {change.name}",
            f"{change.proposed_by} proposed a change to the access policy {change.name}:\n\n{change.reason}\n\n"
            "It takes effect only when another compliance officer approves it in the control panel.",
            None,
            recipients,
        )
    return len(recipients)


@shared_task(name="access.notify_oncall_override", ignore_result=True)
def notify_oncall_override(override_id: int) -> int:
    """Tell the workspace's compliance officers that someone broke the glass."""
    override = OnCallOverride.objects.select_related("user", "workspace").get(pk=override_id)
    recipients = _officers(override.workspace.organization_id, override.workspace_id)
    if recipients:
        send_mail(
            f"On-call override taken in {override.workspace}",
            f"{override.user} took an on-call override in {override.workspace} until "
            f"{override.ends_at:%Y-%m-%d %H:%M} UTC.\n\nReason: {override.reason}\n\n"
            "You can end it early in the control panel.",
            None,
            recipients,
        )
    return len(recipients)
