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
