"""The builders' pages: my workflows, create, edit (structured or JSON), the change page (with
*Apply now* for the officers and owners who open it)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.utils import ErrorDict
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.access.decision import AccessDenied, decide
from governance.access.queries import restrict
from governance.tenancy.models import Workspace
from workflows.changes import selectors, services
from workflows.changes.checks import step_note
from workflows.changes.definition import schema_json
from workflows.changes.forms import (
    ChangeForm,
    JsonDefinitionForm,
    StepFormSet,
    WorkflowSettingsForm,
    definition_from,
    error_summary,
    place_definition_errors,
    step_initial,
    trigger_initial,
    with_added_step,
)
from workflows.changes.graph import graph_image
from workflows.changes.models import ChangeState, WorkflowVersion
from workflows.changes.schedule import cron_next_runs
from workflows.changes.tiers import CHECKLIST

STARTER = {
    "trigger": {"type": "manual"},
    "steps": [{"id": "start", "type": "transform", "expression": "input", "next": None}],
}


@login_required
@require_GET
def workflow_list(request):
    workflows = selectors.workflows_visible_to(request.user).order_by("workspace__name", "name")
    return render(
        request,
        "workflows/list.html",
        {"workflows": workflows, "can_create": decide(request.user, "workflow.edit").allowed},
    )


def _editor(
    request,
    *,
    definition: dict,
    base_version: WorkflowVersion | None,
    settings_form=None,
    template: str,
    extra: dict,
):
    """Render or process the structured editor (default) or the JSON view (``?mode=json``)."""
    json_mode = request.GET.get("mode") == "json"
    initial_base = {"base_version": base_version.pk if base_version else None}
    posted = request.POST or None
    # "Add a step" and "Update the form" re-draw the editor with what was typed; nothing is
    # validated or saved.
    redraw = posted is not None and not json_mode and ("add_step" in posted or "redraw" in posted)
    if redraw and "add_step" in posted:
        posted = with_added_step(posted)
    if json_mode:
        change_form = JsonDefinitionForm(
            request.POST or None, initial={**initial_base, "definition": json.dumps(definition, indent=2)}
        )
        steps = None
    else:
        change_form = ChangeForm(posted, initial={**initial_base, **trigger_initial(definition)})
        steps = StepFormSet(posted, initial=step_initial(definition), prefix="steps")
    context = {
        "change_form": change_form,
        "steps": steps,
        "json_mode": json_mode,
        "settings_form": settings_form,
        "redraw": redraw,
        **extra,
    }
    return change_form, steps, context, template


def _finish_context(context: dict, *, time_zone: str | None, workspace=None) -> dict:
    """What the page shows besides the forms: the error summary, a schedule's next runs and, beside
    each step, what other sub-domains say of it (the AI register, of an AI step's model)."""
    change_form, steps, settings_form = context["change_form"], context["steps"], context["settings_form"]
    _attach_step_notes(steps, workspace)
    if context["redraw"]:
        _unvalidated(settings_form, change_form, steps)
    elif change_form.is_bound:
        context["error_summary"] = error_summary(settings_form, change_form, steps)
    context["next_runs"] = _next_runs(change_form, time_zone)
    context["time_zone"] = time_zone
    return context


def _attach_step_notes(steps, workspace) -> None:
    """Give each step's form what other sub-domains say of it (``note``), e.g. the AI register's
    facts of an AI step's model."""
    if steps is None or workspace is None:
        return
    for form in steps.forms:
        chosen = form.step_type()
        if chosen is None:
            continue
        values = {name: form[name].value() for name in ("provider", "model")}
        step = {"type": chosen, **{k: v.strip()[:100] for k, v in values.items() if isinstance(v, str)}}
        form.note = step_note(workspace, step)


def _unvalidated(*forms_and_sets) -> None:
    """A re-drawn editor (*Add a step*, *Update the form*) shows what was typed without judging
    it: no form is validated, so no error appears until the builder saves."""
    for item in forms_and_sets:
        if item is None or not item.is_bound:
            continue
        if hasattr(item, "forms"):
            for form in item.forms:
                form._errors = ErrorDict()
            item._errors = [form._errors for form in item.forms]
            item._non_form_errors = item.error_class()
        else:
            item._errors = ErrorDict()


def _next_runs(change_form, time_zone: str | None) -> list:
    if time_zone is None or "trigger_cron" not in change_form.fields:
        return []
    if change_form.is_bound:
        kind, cron = change_form.data.get("trigger_type"), change_form.data.get("trigger_cron", "")
    else:
        kind, cron = change_form.initial.get("trigger_type"), change_form.initial.get("trigger_cron", "")
    return cron_next_runs(cron, time_zone) if kind == "schedule" and isinstance(cron, str) else []


def _submitted_definition(change_form, steps):
    """The definition from a valid form, and the step forms in definition order."""
    if steps is None:
        return change_form.cleaned_data["definition"], []
    return definition_from(change_form, steps)


def _show_errors(error: ValidationError, change_form, step_forms, settings_form=None) -> None:
    for field, problems in error.message_dict.items():
        if field == "definition":
            place_definition_errors(problems, change_form, step_forms)
        elif settings_form is not None and field in settings_form.fields:
            settings_form.add_error(field, problems)
        elif field in change_form.fields and not change_form.fields[field].widget.is_hidden:
            change_form.add_error(field, problems)
        else:
            change_form.add_error(None, problems)


@login_required
@require_http_methods(["GET", "POST"])
def workflow_create(request):
    workspaces = restrict(Workspace.objects.all(), request.user, "workflow.edit")
    if not workspaces.exists():
        raise PermissionDenied("None of your roles lets you create workflows.")
    settings_form = WorkflowSettingsForm(request.POST or None)
    settings_form.fields["workspace"] = _workspace_field(workspaces)
    change_form, steps, context, template = _editor(
        request,
        definition=STARTER,
        base_version=None,
        settings_form=settings_form,
        template="workflows/edit.html",
        extra={"creating": True},
    )
    if request.method == "POST" and not context["redraw"]:
        valid = settings_form.is_valid() & change_form.is_valid() & (steps is None or steps.is_valid())
        if valid:
            definition, step_forms = _submitted_definition(change_form, steps)
            data = settings_form.cleaned_data
            try:
                change = services.workflow_create(
                    actor=request.user,
                    workspace=data["workspace"],
                    name=data["name"],
                    slug=data["slug"],
                    environment=data["environment"],
                    data_region=data["data_region"],
                    handles_pii=data["handles_pii"],
                    definition=definition,
                    summary=change_form.cleaned_data["summary"],
                )
            except ValidationError as error:
                _show_errors(error, change_form, step_forms, settings_form)
            else:
                messages.success(request, "Saved as version 1. Submit it for review when it is ready.")
                return redirect("change-detail", change_id=change.pk)
    chosen = settings_form["workspace"].value() if settings_form.is_bound else None
    workspace = workspaces.filter(pk=chosen).first() if str(chosen or "").isdigit() else workspaces.first()
    return render(
        request,
        template,
        _finish_context(context, time_zone=workspace.time_zone if workspace else None, workspace=workspace),
    )


def _workspace_field(workspaces):
    return forms.ModelChoiceField(queryset=workspaces, empty_label=None)


@login_required
@require_GET
def workflow_detail(request, workflow_id: int):
    workflow = get_object_or_404(selectors.workflows_visible_to(request.user), pk=workflow_id)
    changes = selectors.changes_visible_to(request.user).filter(workflow=workflow).order_by("-created_at")
    return render(
        request,
        "workflows/detail.html",
        {
            "workflow": workflow,
            "changes": changes,
            "can_edit": decide(request.user, "workflow.edit", workflow).allowed,
            "can_see_runs": decide(request.user, "execution.view", workflow).allowed,
            "graph": graph_image(workflow.active_version.definition) if workflow.active_version_id else None,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def workflow_edit(request, workflow_id: int):
    workflow = get_object_or_404(selectors.workflows_visible_to(request.user), pk=workflow_id)
    decision = decide(request.user, "workflow.edit", workflow)
    if not decision.allowed:
        raise PermissionDenied(decision.message)
    latest = workflow.versions.order_by("-number").first()
    change_form, steps, context, template = _editor(
        request,
        definition=latest.definition if latest else STARTER,
        base_version=latest,
        template="workflows/edit.html",
        extra={"workflow": workflow, "latest": latest},
    )
    waiting = selectors.changes_a_save_supersedes(workflow)
    context["superseded"] = waiting
    if (
        request.method == "POST"
        and not context["redraw"]
        and change_form.is_valid()
        and (steps is None or steps.is_valid())
    ):
        definition, step_forms = _submitted_definition(change_form, steps)
        base_id = change_form.cleaned_data.get("base_version")
        base = WorkflowVersion.objects.filter(pk=base_id, workflow=workflow).first() if base_id else None
        stale = latest is not None and (base is None or base.pk != latest.pk)
        if waiting and not stale and request.POST.get("confirm_supersede") != "yes":
            # Saving now would take the waiting change out of the reviewers' queue: ask first.
            context["confirm_supersede"] = True
            return render(
                request,
                template,
                _finish_context(
                    context, time_zone=workflow.workspace.time_zone, workspace=workflow.workspace
                ),
            )
        try:
            change = services.workflow_version_create(
                actor=request.user,
                workflow=workflow,
                definition=definition,
                base_version=base,
                summary=change_form.cleaned_data["summary"],
            )
        except ValidationError as error:
            _show_errors(error, change_form, step_forms)
        else:
            messages.success(request, f"Saved as version {change.version.number}.")
            return redirect("change-detail", change_id=change.pk)
    return render(
        request,
        template,
        _finish_context(context, time_zone=workflow.workspace.time_zone, workspace=workflow.workspace),
    )


@login_required
@require_GET
def change_detail(request, change_id: int):
    change = get_object_or_404(selectors.changes_visible_to(request.user), pk=change_id)
    history = list(change.approvals.select_related("reviewer"))
    return render(
        request,
        "workflows/change.html",
        {
            "change": change,
            "diff": change.diff,
            "graph": graph_image(change.version.definition, diff=change.diff),
            "required_tiers": change.required_tiers,
            "checklist": CHECKLIST,
            "approvals": history,
            "is_author": change.author_id == request.user.pk,
            "waiting": selectors.change_waiting(change),
            "refusal": selectors.change_refusal(change),
            "can_apply_now": selectors.may_apply_now(request.user, change),
            "open": change.state
            in (ChangeState.DRAFT, ChangeState.SUBMITTED, ChangeState.IN_REVIEW, ChangeState.APPROVED),
        },
    )


@login_required
@require_POST
def change_submit(request, change_id: int):
    change = get_object_or_404(selectors.changes_visible_to(request.user), pk=change_id)
    try:
        change = services.change_request_submit(actor=request.user, change=change)
        messages.success(request, "Submitted. The reviewers have been notified.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("change-detail", change_id=change.pk)


@login_required
@require_POST
def change_withdraw(request, change_id: int):
    change = get_object_or_404(selectors.changes_visible_to(request.user), pk=change_id)
    try:
        services.change_request_withdraw(actor=request.user, change=change)
        messages.success(request, "Withdrawn.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("change-detail", change_id=change.pk)


@login_required
@require_POST
def change_apply(request, change_id: int):
    """*Apply now* for officers and owners: the policies decide at this moment, and say why not."""
    change = get_object_or_404(selectors.changes_visible_to(request.user), pk=change_id)
    if not selectors.may_apply_now(request.user, change):
        raise PermissionDenied("You may not apply this change.")
    try:
        services.change_request_apply_now(actor=request.user, change=change)
        messages.success(request, "Applied: this version is now the active one.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    except AccessDenied as refusal:
        messages.error(request, f"Not applied: {refusal.decision.message}")
    return redirect("change-detail", change_id=change.pk)


@require_GET
def definition_schema(request):
    """The published JSON Schema of workflow definitions."""
    return HttpResponse(schema_json(), content_type="application/schema+json")
