"""Input and output serializers of the executions API."""

from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from workflows.executions import selectors
from workflows.executions.models import Execution, ExecutionStatus, StepRun, TriggerKind

# The largest id PostgreSQL's integer column holds: a bigger one is the client's error, not the database's.
MAX_ID = 2**31 - 1


def duration_ms(started, finished) -> int | None:
    return int((finished - started).total_seconds() * 1000) if started and finished else None


def stored_json(text: str | None):
    """The redacted JSON a step run keeps (decrypted by its field), or None when there is none."""
    return json.loads(text) if text else None


class StepRunOutput(serializers.ModelSerializer):
    """One attempt at one step. ``inputs`` and ``outputs`` are the redacted values, present only
    for those who may see the run's data (``execution.view``); the digests are always there."""

    duration_ms = serializers.SerializerMethodField()
    inputs = serializers.SerializerMethodField()
    outputs = serializers.SerializerMethodField()

    class Meta:
        model = StepRun
        fields = [
            "id",
            "step_id",
            "step_type",
            "attempt",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "deliveries",
            "error_class",
            "error_message",
            "inputs_digest",
            "outputs_digest",
            "inputs",
            "outputs",
        ]
        read_only_fields = fields

    def get_duration_ms(self, run) -> int | None:
        return duration_ms(run.started_at, run.finished_at)

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_inputs(self, run):
        return stored_json(run.inputs) if self.context.get("show_data") else None

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_outputs(self, run):
        return stored_json(run.outputs) if self.context.get("show_data") else None


class VersionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    content_hash = serializers.CharField()


class InterventionOutput(serializers.Serializer):
    action = serializers.CharField()
    actor = serializers.CharField()
    reason = serializers.CharField()
    at = serializers.DateTimeField()


class ExecutionOutput(serializers.ModelSerializer):
    """A run, as lists show it."""

    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    workflow = serializers.PrimaryKeyRelatedField(read_only=True)
    version = VersionOutput(read_only=True)
    triggered_by = serializers.EmailField(source="triggered_by.email", read_only=True, allow_null=True)
    duration_ms = serializers.SerializerMethodField()

    class Meta:
        model = Execution
        fields = [
            "id",
            "workspace",
            "workflow",
            "version",
            "trigger_kind",
            "trigger_source",
            "triggered_by",
            "status",
            "input_digest",
            "created_at",
            "started_at",
            "finished_at",
            "duration_ms",
        ]
        read_only_fields = fields

    def get_duration_ms(self, execution) -> int | None:
        return duration_ms(execution.started_at, execution.finished_at)


class ExecutionDetailOutput(ExecutionOutput):
    """A run with its step attempts, in order, and who stepped in (cancelled it, and why)."""

    step_runs = StepRunOutput(many=True, read_only=True)
    interventions = serializers.SerializerMethodField()

    class Meta(ExecutionOutput.Meta):
        fields = [*ExecutionOutput.Meta.fields, "step_runs", "interventions"]
        read_only_fields = fields

    @extend_schema_field(InterventionOutput(many=True))
    def get_interventions(self, execution):
        return InterventionOutput(selectors.execution_interventions(execution), many=True).data


class ExecutionFilterInput(serializers.Serializer):
    """The list's filters; an unknown value is refused (400), never ignored."""

    workflow = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    status = serializers.ChoiceField(choices=ExecutionStatus.choices, required=False)
    trigger_kind = serializers.ChoiceField(choices=TriggerKind.choices, required=False)


class ExecutionTriggerInput(serializers.Serializer):
    input = serializers.JSONField(
        help_text="A JSON object (at most 64 KiB), the run's input; values that look like secrets "
        "are redacted before they are stored."
    )
    idempotency_key = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Send the same key again and you get the run it started (200) instead of a new one.",
    )


class ExecutionCancelInput(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, help_text="Why the run is stopped (kept in the ledger).")


class ExecutionRestartInput(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, help_text="Why the run goes on (kept in the ledger).")
