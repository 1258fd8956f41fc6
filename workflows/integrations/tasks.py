"""Notifications about requests to connect integrations, sent after commit."""

from __future__ import annotations

from django.core.mail import send_mail

from governance.core.jobs import shared_task
from workflows.integrations.models import IntegrationRequest


@shared_task(name="workflows.notify_integration_request", ignore_result=True)
def notify_integration_request(request_id: int) -> int:
    """Ask the requester's manager to decide a request to connect a financial or HR system."""
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
