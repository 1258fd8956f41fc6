"""The integrations page: what is connected, the requests to connect more, and the manager's decision."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from governance.access.queries import restrict
from governance.core.choices import ReviewDecision
from governance.tenancy.models import Workspace
from workflows.integrations import selectors, services
from workflows.integrations.forms import IntegrationRequestForm, ManagerDecisionForm
from workflows.integrations.models import Integration


@login_required
@require_http_methods(["GET", "POST"])
def integrations(request):
    """Connected integrations and requests; owners ask to connect new ones here."""
    workspaces = restrict(Workspace.objects.all(), request.user, "integration.manage")
    form = (
        IntegrationRequestForm(request.POST or None, workspaces=workspaces) if workspaces.exists() else None
    )
    if request.method == "POST":
        if form is None:
            raise PermissionDenied("None of your roles lets you connect integrations.")
        if form.is_valid():
            try:
                created = services.integration_request_create(actor=request.user, **form.cleaned_data)
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
            else:
                messages.success(
                    request,
                    "Connected."
                    if created.status == "connected"
                    else "Requested: your manager has been asked to approve it.",
                )
                return redirect("integrations")
    connected = restrict(Integration.objects.select_related("workspace"), request.user, "workflow.view")
    requests = selectors.integration_requests_visible_to(request.user)[:50]
    return render(
        request,
        "workflows/integrations.html",
        {"form": form, "integrations": connected, "requests": requests},
    )


@login_required
@require_http_methods(["GET", "POST"])
def integration_request(request, request_id: int):
    """One request; the requester's manager approves or rejects it here."""
    item = get_object_or_404(selectors.integration_requests_visible_to(request.user), pk=request_id)
    is_manager = item.requested_by.manager_id == request.user.pk and item.status == "pending"
    form = ManagerDecisionForm(request.POST or None) if is_manager else None
    if request.method == "POST":
        if form is None:
            raise PermissionDenied("Only the requester's manager decides this request.")
        if form.is_valid():
            try:
                services.integration_request_decide(
                    actor=request.user,
                    request=item,
                    approve=form.cleaned_data["decision"] == ReviewDecision.APPROVE,
                    comment=form.cleaned_data["comment"],
                )
            except ValidationError as error:
                for problems in error.message_dict.values():
                    form.add_error(None, problems)
            else:
                messages.success(request, "Recorded.")
                return redirect("integration-request", request_id=item.pk)
    return render(request, "workflows/integration_request.html", {"item": item, "form": form})
