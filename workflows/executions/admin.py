"""Runs in the control panel, read-only: officers and owners look a run up with its step attempts
(digests, never the values); the operators' pages start and stop runs."""

from __future__ import annotations

from django.contrib import admin
from django.forms.models import BaseInlineFormSet

from governance.access.admin_base import ReadOnlyInlineMixin, ReadOnlyModelAdmin
from workflows.executions.models import Execution, StepRun


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
