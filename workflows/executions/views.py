"""The run pages: a workflow's runs (filters, newest first, keyset pages) with *Run this
workflow*, and a run's timeline with *Stop this run*. Reading needs ``execution.view`` on the
workflow's workspace (anyone else gets 404, as if there were no runs); the forms are shown to,
and their posts accepted from, those with ``execution.trigger`` only."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.access.decision import AccessDenied, decide
from workflows.changes.models import Workflow
from workflows.executions import selectors, services
from workflows.executions.forms import CancelForm, RestartForm, RunFilterForm, TriggerForm
from workflows.executions.models import Execution, ExecutionStatus

RUNS_PER_PAGE = 25
# How the run page names each intervention of the ledger (an unknown one is shown by its code).
INTERVENTION_LABELS = {
    "operator.cancelled": "Stopped",
    "operator.retried": "Retried",
    "operator.resumed": "Resumed",
}
OPEN_STATES = (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING, ExecutionStatus.WAITING)


def _workflow_or_404(user, workflow_id: int) -> Workflow:
    workflow = selectors.workflows_with_visible_runs(user).filter(pk=workflow_id).first()
    if workflow is None:
        raise Http404("No such workflow.")
    return workflow


def _show_refusal(form, error: ValidationError) -> None:
    """A service's refusal on the form: on the field it names, or above the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for field, problems in error.message_dict.items():
        form.add_error(field if field in form.fields and field != "idempotency_key" else None, problems)


@login_required
@require_http_methods(["GET", "POST"])
def workflow_runs(request, workflow_id: int):
    workflow = _workflow_or_404(request.user, workflow_id)
    can_trigger = decide(request.user, "execution.trigger", workflow).allowed
    trigger_form = TriggerForm()
    if request.method == "POST":
        if not can_trigger:
            raise PermissionDenied("Your role does not let you start runs of this workflow.")
        trigger_form = TriggerForm(request.POST)
        if trigger_form.is_valid():
            try:
                execution = services.execution_trigger(
                    actor=request.user,
                    workflow=workflow,
                    input=trigger_form.cleaned_data["input"],
                    idempotency_key=trigger_form.cleaned_data["idempotency_key"],
                )
            except ValidationError as error:
                _show_refusal(trigger_form, error)
            except AccessDenied as refusal:
                trigger_form.add_error(None, f"Not started: {refusal.decision.message}")
            else:
                messages.success(request, f"Run {execution.pk} started.")
                return redirect("run-detail", execution_id=execution.pk)
    filters = RunFilterForm(request.GET or None)
    runs = Execution.objects.none()
    if not filters.is_bound or filters.is_valid():
        data = filters.cleaned_data if filters.is_bound else {}
        runs = selectors.executions_filtered(
            selectors.executions_visible_to(request.user)
            .filter(workflow=workflow)
            .select_related("triggered_by"),
            status=data.get("status") or None,
            trigger_kind=data.get("trigger_kind") or None,
        )
        if data.get("before"):
            runs = selectors.executions_before(runs, data["before"])
    page = list(runs.order_by("-created_at", "-id")[: RUNS_PER_PAGE + 1])
    older = page[RUNS_PER_PAGE - 1].pk if len(page) > RUNS_PER_PAGE else None
    query = request.GET.copy()
    query.pop("before", None)
    return render(
        request,
        "workflows/runs.html",
        {
            "workflow": workflow,
            "runs": page[:RUNS_PER_PAGE],
            "filters": filters,
            "older": older,
            "filter_query": query.urlencode(),
            "can_trigger": can_trigger,
            "trigger_form": trigger_form,
        },
    )


def _timeline(execution: Execution) -> list[dict]:
    """Each step attempt as the run page shows it: its redacted inputs and outputs as pretty JSON
    and, for a branch, the edge it took and the step that followed."""
    steps = {step["id"]: step for step in execution.version.definition.get("steps", [])}
    rows = []
    runs = list(execution.step_runs.all())
    calls = (
        {call.step_run_id: call for call in execution.ai_calls.all()}
        if any(run.step_type == "ai_prompt" for run in runs)
        else {}
    )
    for run in runs:
        outputs = json.loads(run.outputs) if run.outputs else None
        branch = None
        if (
            run.step_type == "branch"
            and isinstance(outputs, dict)
            and outputs.get("edge") in ("then", "else")
        ):
            branch = {"edge": outputs["edge"], "next": steps.get(run.step_id, {}).get(outputs["edge"])}
        rows.append(
            {
                "run": run,
                "duration_ms": (
                    int((run.finished_at - run.started_at).total_seconds() * 1000)
                    if run.started_at and run.finished_at
                    else None
                ),
                "retry": run.attempt > 1,
                "branch": branch,
                "ai": calls.get(run.pk),
                "inputs": json.dumps(json.loads(run.inputs), indent=2, ensure_ascii=False)
                if run.inputs
                else "",
                "outputs": json.dumps(outputs, indent=2, ensure_ascii=False) if run.outputs else "",
            }
        )
    return rows


def _run_or_404(user, execution_id: int) -> Execution:
    return get_object_or_404(
        selectors.executions_visible_to(user)
        .select_related("triggered_by", "workflow__workspace")
        .prefetch_related(Prefetch("step_runs", queryset=selectors.step_runs_in_order())),
        pk=execution_id,
    )


def _run_page(
    request,
    execution: Execution,
    cancel_form: CancelForm | None = None,
    restart_form: RestartForm | None = None,
):
    can_trigger = decide(request.user, "execution.trigger", execution).allowed
    return render(
        request,
        "workflows/run.html",
        {
            "execution": execution,
            "timeline": _timeline(execution),
            "interventions": [
                {**item, "label": INTERVENTION_LABELS.get(item["action"], item["action"])}
                for item in selectors.execution_interventions(execution)
            ],
            "can_cancel": can_trigger and execution.status in OPEN_STATES,
            "cancel_form": cancel_form or CancelForm(),
            "restart": RESTARTS.get(execution.status) if can_trigger else None,
            "restart_form": restart_form or RestartForm(),
        },
    )


@login_required
@require_GET
def run_detail(request, execution_id: int):
    return _run_page(request, _run_or_404(request.user, execution_id))


@login_required
@require_POST
def run_cancel(request, execution_id: int):
    execution = _run_or_404(request.user, execution_id)
    decision = decide(request.user, "execution.trigger", execution)
    if not decision.allowed:
        raise PermissionDenied(decision.message)
    form = CancelForm(request.POST)
    if form.is_valid():
        try:
            services.execution_cancel(
                actor=request.user, execution=execution, reason=form.cleaned_data["reason"]
            )
        except ValidationError as error:
            _show_refusal(form, error)
        else:
            messages.success(request, "The run is stopped.")
            return redirect("run-detail", execution_id=execution.pk)
    return _run_page(request, _run_or_404(request.user, execution_id), form)


# What an operator may do to go on with an ended run: (url name, heading, button, service).
RESTARTS = {
    ExecutionStatus.FAILED: ("run-retry", "Retry the failed step", "Retry", services.execution_retry),
    ExecutionStatus.HALTED: ("run-resume", "Resume after the halt", "Resume", services.execution_resume),
}


@login_required
@require_POST
def run_retry(request, execution_id: int):
    return _restart(request, execution_id, ExecutionStatus.FAILED, "The failed step runs again.")


@login_required
@require_POST
def run_resume(request, execution_id: int):
    return _restart(request, execution_id, ExecutionStatus.HALTED, "The run goes on.")


def _restart(request, execution_id: int, status: str, done: str):
    execution = _run_or_404(request.user, execution_id)
    decision = decide(request.user, "execution.trigger", execution)
    if not decision.allowed:
        raise PermissionDenied(decision.message)
    form = RestartForm(request.POST)
    if form.is_valid():
        try:
            RESTARTS[status][3](actor=request.user, execution=execution, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            _show_refusal(form, error)
        else:
            messages.success(request, done)
            return redirect("run-detail", execution_id=execution.pk)
    return _run_page(request, _run_or_404(request.user, execution_id), restart_form=form)
