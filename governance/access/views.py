"""The on-call page: people on call break the glass here (and end it), outside the control panel."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from governance.access import services
from governance.access.models import OnCallOverride
from governance.access.queries import restrict
from governance.tenancy.models import Workspace


class OverrideRequestForm(forms.Form):
    workspace = forms.ModelChoiceField(queryset=Workspace.objects.none())
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        min_length=10,
        help_text="The incident or task, e.g. 'INC-4711: payroll export stuck'.",
    )
    hours = forms.IntegerField(min_value=1, max_value=12, initial=2, help_text="1 to 12 hours.")

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspace"].queryset = restrict(Workspace.objects.all(), actor, "oncall.activate")


@login_required
@require_http_methods(["GET", "POST"])
def oncall(request):
    """Take an on-call override, and see your own."""
    form = OverrideRequestForm(request.POST or None, actor=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            override = services.oncall_override_activate(
                actor=request.user,
                workspace=form.cleaned_data["workspace"],
                reason=form.cleaned_data["reason"],
                duration=timedelta(hours=form.cleaned_data["hours"]),
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(
                request,
                f"On-call override active until {override.ends_at:%H:%M} UTC. "
                "The compliance officers were notified.",
            )
            return redirect("oncall")
    overrides = OnCallOverride.objects.filter(user=request.user).select_related("workspace")[:20]
    now = timezone.now()
    return render(request, "access/oncall.html", {"form": form, "overrides": overrides, "now": now})


@login_required
@require_POST
def oncall_end(request, override_id: int):
    override = get_object_or_404(OnCallOverride, pk=override_id, user=request.user)
    try:
        services.oncall_override_end(actor=request.user, override=override)
        messages.success(request, "Your on-call override has ended.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("oncall")
