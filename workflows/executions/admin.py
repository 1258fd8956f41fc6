"""Runs in the control panel, read-only: officers and owners look a run up with its step attempts
(digests, never the values); the operators' pages start and stop runs."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.forms.models import BaseInlineFormSet

from governance.access.admin_base import GovernedModelAdmin, ReadOnlyInlineMixin, ReadOnlyModelAdmin
from governance.core.text import MAX_REASON_CHARS
from workflows.executions.ai_controls import ai_controls_set
from workflows.executions.models import AIControls, Execution, StepRun


class OwnStepRunsFormSet(BaseInlineFormSet):
    """The hidden id of each row offers that run's own step runs only (Django's default is every
    step run of the table, other organisations' included)."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        form.fields[self._pk_field.name].queryset = self.get_queryset()


class StepRunInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = StepRun
    formset = OwnStepRunsFormSet
    fields = [
        "step_id",
        "step_type",
        "attempt",
        "status",
        "started_at",
        "finished_at",
        "deliveries",
        "error_class",
        "error_message",
        "inputs_digest",
        "outputs_digest",
    ]
    readonly_fields = fields
    ordering = ["created_at", "attempt"]


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyModelAdmin):
    list_display = [
        "__str__",
        "workspace",
        "status",
        "trigger_kind",
        "triggered_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "trigger_kind"]
    list_select_related = ["workspace", "workflow", "triggered_by"]
    show_full_result_count = False
    ordering = ["-id"]
    fields = [
        "workspace",
        "workflow",
        "version",
        "status",
        "trigger_kind",
        "trigger_source",
        "triggered_by",
        "input_digest",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields
    inlines = [StepRunInline]


class AIControlsForm(forms.ModelForm):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=MAX_REASON_CHARS,
        help_text="Required: why the limits change. Recorded in the ledger with the values before and after.",
    )

    class Meta:
        model = AIControls
        fields = ["workspace", "risk_threshold", "max_calls_per_execution", "daily_token_budget"]
        help_texts = {
            "risk_threshold": "0 to 1: an input whose injection risk score reaches it sends the AI decision to a "
            "person (docs/ai-controls.md gives the measured detection and false-alarm rates per threshold).",
            "max_calls_per_execution": "Model calls one run may make; the next is refused and the run stops.",
            "daily_token_budget": "Tokens (prompt and answer) the workspace may spend in a UTC day.",
        }


@admin.register(AIControls)
class AIControlsAdmin(GovernedModelAdmin):
    """A workspace's AI limits: one row per workspace, changed only with a reason."""

    form = AIControlsForm
    list_display = ["workspace", "risk_threshold", "max_calls_per_execution", "daily_token_budget", "updated_by",
                    "updated_at"]  # fmt: skip
    list_select_related = ["workspace", "updated_by"]
    ordering = ["workspace__name"]

    def get_readonly_fields(self, request, obj=None):
        return ["workspace"] if obj is not None else []

    def service_save(self, request, obj, form, change):
        return ai_controls_set(
            actor=request.user,
            workspace=form.cleaned_data.get("workspace") or obj.workspace,
            risk_threshold=form.cleaned_data["risk_threshold"],
            max_calls_per_execution=form.cleaned_data["max_calls_per_execution"],
            daily_token_budget=form.cleaned_data["daily_token_budget"],
            reason=form.cleaned_data["reason"],
        )
