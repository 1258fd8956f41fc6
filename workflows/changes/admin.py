"""Officers in the control panel: the approval inbox, the change page, the decision page and *Apply
now*, and the workflows' status page (activate, deactivate, quarantine)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from governance.access.admin_base import ReadOnlyModelAdmin
from governance.access.decision import AccessDenied, decide
from governance.core.choices import ReviewDecision
from workflows.changes import posture, selectors, services
from workflows.changes.graph import graph_image
from workflows.changes.models import ChangeRequest, ChangeState, Workflow
from workflows.changes.tiers import CHECKLIST


class AwaitingMyReview(admin.SimpleListFilter):
    """The inbox opens on what waits for my review (oldest first); *All changes* is one click."""

    title = "inbox"
    parameter_name = "inbox"
    DEFAULT = "mine"

    def lookups(self, request, model_admin):
        return [
            ("mine", "Waiting for my review"),
            ("approved", "Approved, waiting to apply"),
            ("all", "All changes"),
        ]

    def choices(self, changelist):
        current = self.value() or self.DEFAULT
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or self.DEFAULT
        if value == "mine":
            return queryset.filter(pk__in=selectors.inbox_for(request.user).values("pk"))
        if value == "approved":
            return queryset.filter(state=ChangeState.APPROVED)
        return queryset


@admin.register(ChangeRequest)
class ChangeRequestAdmin(ReadOnlyModelAdmin):
    """The approval inbox: ``?inbox=mine`` lists what waits for me, oldest first, with its age."""

    list_display = ["summary", "workflow", "workspace", "author", "state", "tiers", "age"]
    list_filter = [AwaitingMyReview, "state"]
    list_select_related = ["workflow__workspace", "author"]
    ordering = ["submitted_at", "id"]
    change_form_template = "admin/workflows/changerequest/change_form.html"
    fields = ["workflow", "summary", "author", "state", "submitted_at", "decided_at"]
    readonly_fields = fields

    @admin.display(description="workspace")
    def workspace(self, change: ChangeRequest) -> str:
        return change.workflow.workspace.name

    @admin.display(description="approvals needed")
    def tiers(self, change: ChangeRequest) -> str:
        return ", ".join(t["code"] for t in change.required_tiers) or "—"

    @admin.display(description="waiting")
    def age(self, change: ChangeRequest) -> str:
        if change.state == ChangeState.APPROVED:
            # The reason stored at its last deferral: a list never evaluates policies row by row.
            return change.deferral_reason or "Approved: the portal applies it at its next check."
        if change.submitted_at is None or change.state not in (ChangeState.SUBMITTED, ChangeState.IN_REVIEW):
            return "—"
        waited = timezone.now() - change.submitted_at
        hours = int(waited.total_seconds() // 3600)
        late = " — past the review SLA" if waited > selectors.REVIEW_SLA else ""
        return f"{hours // 24}d {hours % 24}h{late}"

    def get_urls(self):
        return [
            path(
                "<int:change_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="workflows_changerequest_decide",
            ),
            path(
                "<int:change_id>/apply/",
                self.admin_site.admin_view(self.apply_view),
                name="workflows_changerequest_apply",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        change = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if change is not None:
            context.update(_review_context(request.user, change))
        return super().change_view(request, object_id, form_url, context)

    def decide_view(self, request, change_id: int):
        change = get_object_or_404(selectors.changes_visible_to(request.user), pk=change_id)
        tiers = selectors.approvable_tiers(request.user, change)
        if not tiers:
            raise PermissionDenied("You have no approval to give on this change.")
        form = DecisionForm(request.POST or None, tiers=tiers, change=change)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                result = services.change_request_decide(
                    actor=request.user,
                    change=change,
                    tier=data["tier"],
                    approve=data["decision"] == ReviewDecision.APPROVE,
                    comment=data["comment"],
                    checklist={code: data.get(f"check_{code}") for code, _ in CHECKLIST},
                )
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(None if field not in form.fields else field, errors)
            else:
                messages.success(
                    request, f"Recorded. The change is now {result.get_state_display().lower()}."
                )
                return HttpResponseRedirect(reverse("admin:workflows_changerequest_change", args=[change.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Review: {change.summary}",
            "form": form,
            "change": change,
            "opts": self.model._meta,
            **_review_context(request.user, change),
        }
        return TemplateResponse(request, "admin/workflows/changerequest/decide.html", context)

    def apply_view(self, request, change_id: int):
        """*Apply now* (POST): an officer or owner applies an approved change that waits, if the
        policies allow it now; otherwise the change page says why not."""
        change = get_object_or_404(self.get_queryset(request), pk=change_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not selectors.may_apply_now(request.user, change):
            raise PermissionDenied("You may not apply this change.")
        try:
            services.change_request_apply_now(actor=request.user, change=change)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        except AccessDenied as refusal:
            messages.error(request, f"Not applied: {refusal.decision.message}")
        else:
            messages.success(
                request, f"Applied: version {change.version.number} of {change.workflow} is active."
            )
        return HttpResponseRedirect(reverse("admin:workflows_changerequest_change", args=[change.pk]))


def _review_context(user, change: ChangeRequest) -> dict:
    return {
        "diff": change.diff,
        "graph": graph_image(change.version.definition, diff=change.diff),
        "required_tiers": change.required_tiers,
        "approvals": list(change.approvals.select_related("reviewer")),
        "my_tiers": selectors.approvable_tiers(user, change),
        "waiting": selectors.change_waiting(change),
        "refusal": selectors.change_refusal(change),
        "can_apply_now": selectors.may_apply_now(user, change),
        "checklist": CHECKLIST,
        "version": change.version,
    }


class DecisionForm(forms.Form):
    tier = forms.ChoiceField()
    decision = forms.ChoiceField(choices=ReviewDecision.choices, widget=forms.RadioSelect)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Required: your reasons.")

    def __init__(self, *args, tiers, change, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [(tier, tier) for tier in tiers]
        if any(t["checklist"] for t in change.required_tiers if t["code"] in tiers):
            for code, label in CHECKLIST:
                self.fields[f"check_{code}"] = forms.BooleanField(required=False, label=label)


class StatusForm(forms.Form):
    status = forms.ChoiceField(
        choices=[
            ("active", "Activate"),
            ("inactive", "Deactivate"),
            ("quarantined", "Quarantine (incident: stop now)"),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Required: why.")


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "workspace", "environment", "status", "active_version_label"]
    list_filter = ["status", "environment"]
    # The active version's workflow is the row itself: joining it again would read the table twice.
    list_select_related = ["workspace", "active_version"]
    # The count of every visible workflow is the filtered count when no filter is set; a second
    # count for "(n total)" would cost a query per page view.
    show_full_result_count = False
    fields = [
        "name",
        "workspace",
        "environment",
        "data_region",
        "handles_pii",
        "owner",
        "status",
        "active_version",
    ]
    readonly_fields = fields
    change_form_template = "admin/workflows/workflow/change_form.html"

    @admin.display(description="active version", ordering="active_version__number")
    def active_version_label(self, workflow: Workflow) -> str | None:
        version = workflow.active_version
        return None if version is None else f"{workflow} v{version.number}"

    def get_urls(self):
        return [
            path(
                "<int:workflow_id>/status/",
                self.admin_site.admin_view(self.status_view),
                name="workflows_workflow_status",
            ),
            path(
                "<int:workflow_id>/webhook-secret/",
                self.admin_site.admin_view(self.webhook_secret_view),
                name="workflows_workflow_webhook_secret",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        workflow = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if workflow is not None:
            context["can_set_status"] = decide(request.user, "workflow.stop", workflow).allowed
            context["can_issue_webhook_secret"] = decide(request.user, "credential.manage", workflow).allowed
        return super().change_view(request, object_id, form_url, context)

    def webhook_secret_view(self, request, workflow_id: int):
        """Issue a new signing secret for the workflow's webhook; the value is shown this once."""
        from workflows.executions import hooks  # the engine sits beside the changes

        workflow = get_object_or_404(self.get_queryset(request), pk=workflow_id)
        decision = decide(request.user, "credential.manage", workflow)
        if not decision.allowed:
            raise PermissionDenied(decision.message)
        issued, refusal = None, None
        if request.method == "POST" and request.POST.get("revoke"):
            try:
                count = hooks.webhook_secrets_revoke(
                    actor=request.user, workflow=workflow, reason=request.POST.get("reason", "")
                )
            except ValidationError as error:
                refusal = " ".join(error.messages)
            else:
                messages.success(
                    request, f"{count} secret(s) revoked: the webhook refuses every request now."
                )
        elif request.method == "POST":
            issued = hooks.webhook_secret_issue(actor=request.user, workflow=workflow)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Webhook secret of {workflow}",
            "workflow": workflow,
            "issued": issued,
            "refusal": refusal,
            "secrets": hooks.webhook_secrets_listed(workflow.pk),
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "admin/workflows/workflow/webhook_secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def status_view(self, request, workflow_id: int):
        workflow = get_object_or_404(self.get_queryset(request), pk=workflow_id)
        decision = decide(request.user, "workflow.stop", workflow)
        if not decision.allowed:
            raise PermissionDenied(decision.message)
        form = StatusForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.workflow_set_status(actor=request.user, workflow=workflow, **form.cleaned_data)
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, f"{workflow} is now {form.cleaned_data['status']}.")
                return HttpResponseRedirect(reverse("admin:workflows_workflow_change", args=[workflow.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Activate, deactivate or quarantine {workflow}",
            "form": form,
            "workflow": workflow,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/workflows/workflow/status.html", context)


posture.register()  # the officer's first row of the control panel's posture table
