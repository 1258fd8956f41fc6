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
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from governance.access.decision import AccessDenied
from workflows.executions import selectors, services
from workflows.executions.models import HumanTaskKind, HumanTaskStatus


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


class ReviewForm(DecisionForm):
    """The review of an AI decision: approve the model's output, override it, or reject it."""

    decision = forms.ChoiceField(
        choices=[
            ("approve", "Approve the model's output"),
            ("override", "Override: use my output instead"),
            ("reject", "Reject: the run fails"),
        ],
        widget=forms.RadioSelect,
        label="Decision",
    )
    override = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        required=False,
        max_length=services.MAX_OUTPUT_BYTES,
        label="Your output (JSON)",
        help_text="Checked like the model's: the step's output schema, its validators and its allowed next steps.",
    )
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=services.MAX_ERROR_CHARS,
        help_text="Required to override or reject: say why. The model's output is kept beside yours.",
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == "override" and not (cleaned.get("override") or "").strip():
            self.add_error("override", "Enter the output to use instead, as JSON.")
        return cleaned


@login_required
def task_inbox(request):
    return render(
        request,
        "workflows/tasks.html",
        {"tasks": selectors.human_tasks_for(request.user)[:200], "now": timezone.now()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def task_detail(request, task_id: int):
    task = get_object_or_404(selectors.human_tasks_visible_to(request.user), pk=task_id)
    reviewing = task.kind == HumanTaskKind.AI_REVIEW
    form = (ReviewForm if reviewing else DecisionForm)(request.POST or None)
    if request.method == "POST" and form.is_valid():
        decision = form.cleaned_data["decision"]
        try:
            services.human_task_decide(
                actor=request.user,
                task=task,
                approve=decision in ("approve", "override"),
                comment=form.cleaned_data["comment"],
                override=form.cleaned_data.get("override") if decision == "override" else None,
            )
        except AccessDenied as refusal:
            form.add_error(None, str(refusal))
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            done = {"approve": "approved", "override": "overridden", "reject": "rejected"}[decision]
            messages.success(request, f"{task}: {done}.")
            return HttpResponseRedirect(reverse("task-inbox"))
    inputs = task.step_run.inputs
    review = json.loads(task.review) if reviewing and task.review else None
    return render(
        request,
        "workflows/task.html",
        {
            "task": task,
            "form": form,
            "open": task.status == HumanTaskStatus.OPEN,
            "triggered_by_me": task.execution.triggered_by_id == request.user.pk,
            "inputs": json.dumps(json.loads(inputs), indent=2, ensure_ascii=False) if inputs else "",
            "review": review,
            "model_output": json.dumps(review["output"], indent=2, ensure_ascii=False) if review else "",
            "override": json.dumps(json.loads(task.override), indent=2, ensure_ascii=False)
            if task.override
            else "",
        },
    )
