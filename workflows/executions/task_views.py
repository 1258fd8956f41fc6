"""The human-task inbox: the approvals waiting for me, and the page where I decide one."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from governance.access.decision import AccessDenied
from workflows.executions import selectors, services
from workflows.executions.models import HumanTaskStatus


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject")], widget=forms.RadioSelect, label="Decision"
    )
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=services.MAX_ERROR_CHARS,
        help_text="Required to reject: say why. Kept with the task; the ledger records that you commented.",
    )


@login_required
def task_inbox(request):
    return render(request, "workflows/tasks.html", {"tasks": selectors.human_tasks_for(request.user)[:200]})


@login_required
@require_http_methods(["GET", "POST"])
def task_detail(request, task_id: int):
    task = get_object_or_404(selectors.human_tasks_visible_to(request.user), pk=task_id)
    form = DecisionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.human_task_decide(
                actor=request.user,
                task=task,
                approve=form.cleaned_data["decision"] == "approve",
                comment=form.cleaned_data["comment"],
            )
        except AccessDenied as refusal:
            form.add_error(None, str(refusal))
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"{task}: {form.cleaned_data['decision']}d.")
            return HttpResponseRedirect(reverse("task-inbox"))
    inputs = task.step_run.inputs
    return render(
        request,
        "workflows/task.html",
        {
            "task": task,
            "form": form,
            "open": task.status == HumanTaskStatus.OPEN,
            "triggered_by_me": task.execution.triggered_by_id == request.user.pk,
            "inputs": json.dumps(json.loads(inputs), indent=2, ensure_ascii=False) if inputs else "",
        },
    )
