"""Input and output serializers of the workflows and changes API."""

from __future__ import annotations

from rest_framework import serializers

from governance.access.queries import restrict
from governance.core.regions import DataRegion
from governance.core.text import validate_display_name
from governance.tenancy.models import Workspace
from workflows.changes.models import ChangeRequest, Environment, Workflow


class WorkflowOutput(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    active_version = serializers.SerializerMethodField()

    class Meta:
        model = Workflow
        fields = [
            "id",
            "workspace",
            "name",
            "slug",
            "environment",
            "data_region",
            "handles_pii",
            "status",
            "active_version",
            "created_at",
        ]
        read_only_fields = fields

    def get_active_version(self, workflow) -> dict | None:
        version = workflow.active_version
        return (
            None
            if version is None
            else {
                "id": version.pk,
                "number": version.number,
                "content_hash": version.content_hash,
                "definition": version.definition,
            }
        )


class ApprovalOutput(serializers.Serializer):
    reviewer = serializers.EmailField(source="reviewer.email")
    tier = serializers.CharField()
    decision = serializers.CharField()
    comment = serializers.CharField()
    checklist = serializers.DictField(child=serializers.BooleanField())
    decided_at = serializers.DateTimeField()


class TierOutput(serializers.Serializer):
    code = serializers.CharField()
    reason = serializers.CharField()
    approver = serializers.CharField()
    checklist = serializers.BooleanField()


class ChangeOutput(serializers.ModelSerializer):
    workflow = serializers.PrimaryKeyRelatedField(read_only=True)
    version = serializers.SerializerMethodField()
    author = serializers.EmailField(source="author.email", read_only=True)
    required_tiers = TierOutput(many=True, read_only=True)
    approvals = ApprovalOutput(many=True, read_only=True)
    diff = serializers.JSONField(read_only=True)

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "workflow",
            "version",
            "author",
            "summary",
            "state",
            "required_tiers",
            "approvals",
            "diff",
            "submitted_at",
            "decided_at",
            "deferral_reason",
            "deferred_until",
            "created_at",
        ]
        read_only_fields = fields

    def get_version(self, change) -> dict:
        return {
            "id": change.version_id,
            "number": change.version.number,
            "definition": change.version.definition,
        }


class WorkflowCreateInput(serializers.Serializer):
    workspace = serializers.PrimaryKeyRelatedField(queryset=Workspace.objects.none())
    name = serializers.CharField(max_length=200, validators=[validate_display_name])
    slug = serializers.SlugField(max_length=80)
    environment = serializers.ChoiceField(choices=Environment.choices)
    data_region = serializers.ChoiceField(choices=DataRegion.choices)
    handles_pii = serializers.BooleanField(default=False)
    definition = serializers.JSONField()
    summary = serializers.CharField(max_length=300, validators=[validate_display_name])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["workspace"].queryset = restrict(
                Workspace.objects.all(), request.user, "workflow.edit"
            )


class VersionCreateInput(serializers.Serializer):
    definition = serializers.JSONField()
    base_version = serializers.IntegerField(allow_null=True, help_text="The version your edit started from.")
    summary = serializers.CharField(max_length=300, validators=[validate_display_name])


class DecisionInput(serializers.Serializer):
    tier = serializers.CharField(max_length=32)
    approve = serializers.BooleanField()
    comment = serializers.CharField(max_length=5000)
    checklist = serializers.DictField(child=serializers.BooleanField(), required=False, default=dict)
