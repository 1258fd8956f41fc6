"""Input and output serializers of the workflow API."""

from __future__ import annotations

from rest_framework import serializers

from governance.access.queries import restrict
from governance.core.regions import DataRegion
from governance.tenancy.models import Workspace
from workflows.models import (
    MAX_ROTATION_DAYS,
    SERVICE_ACCOUNT_SCOPES,
    ChangeRequest,
    Environment,
    Integration,
    IntegrationRequest,
    Sensitivity,
    Workflow,
)


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
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=80)
    environment = serializers.ChoiceField(choices=Environment.choices)
    data_region = serializers.ChoiceField(choices=DataRegion.choices)
    handles_pii = serializers.BooleanField(default=False)
    definition = serializers.JSONField()
    summary = serializers.CharField(max_length=300)

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
    summary = serializers.CharField(max_length=300)


class DecisionInput(serializers.Serializer):
    tier = serializers.CharField(max_length=32)
    approve = serializers.BooleanField()
    comment = serializers.CharField(max_length=5000)
    checklist = serializers.DictField(child=serializers.BooleanField(), required=False, default=dict)


class IntegrationRequestOutput(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = serializers.EmailField(source="requested_by.email", read_only=True)
    decided_by = serializers.EmailField(source="decided_by.email", read_only=True, allow_null=True)
    integration = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = IntegrationRequest
        fields = [
            "id",
            "workspace",
            "name",
            "slug",
            "kind",
            "sensitivity",
            "reason",
            "status",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "comment",
            "integration",
        ]
        read_only_fields = fields


class IntegrationRequestInput(serializers.Serializer):
    workspace = serializers.PrimaryKeyRelatedField(queryset=Workspace.objects.none())
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=60)
    kind = serializers.CharField(max_length=40)
    sensitivity = serializers.ChoiceField(choices=Sensitivity.choices)
    reason = serializers.CharField(max_length=2000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["workspace"].queryset = restrict(
                Workspace.objects.all(), request.user, "integration.manage"
            )


class ManagerDecisionInput(serializers.Serializer):
    approve = serializers.BooleanField()
    comment = serializers.CharField(max_length=5000)


# --- Service accounts ----------------------------------------------------------------------------


class ServiceAccountTokenOutput(serializers.Serializer):
    """What anyone ever sees of a token: its prefix and its dates (never a digest)."""

    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    grace_until = serializers.DateTimeField(allow_null=True)


class ServiceAccountOutput(serializers.Serializer):
    id = serializers.IntegerField()
    workspace = serializers.CharField(source="workspace.slug")
    integration = serializers.CharField(source="integration.slug")
    name = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    disabled_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    rotation_period_days = serializers.IntegerField()
    last_rotated_at = serializers.DateTimeField(allow_null=True)
    rotation_due_at = serializers.DateTimeField()
    tokens = ServiceAccountTokenOutput(many=True, read_only=True)


class ServiceAccountCreateInput(serializers.Serializer):
    integration = serializers.PrimaryKeyRelatedField(queryset=Integration.objects.none())
    name = serializers.CharField(max_length=120)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(SERVICE_ACCOUNT_SCOPES)), allow_empty=False
    )
    rotation_period_days = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ROTATION_DAYS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["integration"].queryset = Integration.objects.filter(
                workspace__in=restrict(Workspace.objects.all(), request.user, "service_account.manage")
            )


class IssuedTokenOutput(serializers.Serializer):
    """A new token: ``token`` is the plaintext, shown in this response only."""

    token = serializers.CharField(source="plaintext")
    prefix = serializers.CharField(source="token.prefix")
    expires_at = serializers.DateTimeField(source="token.expires_at")


# --- Credentials: values are write-only ------------------------------------------------------


class CredentialOutput(serializers.Serializer):
    """What the API shows of a credential: never its value."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    integration = serializers.IntegerField(source="integration_id")
    workspace = serializers.IntegerField(source="workspace_id")
    rotation_required = serializers.BooleanField()
    fingerprint = serializers.SerializerMethodField()
    last_rotation = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()

    def _versions(self, obj):
        if not hasattr(obj, "_shown_versions"):
            obj._shown_versions = list(obj.versions.using("secrets").defer("value").order_by("-number"))
        return obj._shown_versions

    def _active(self, obj):
        return next((v for v in self._versions(obj) if v.status == "active"), None)

    def get_fingerprint(self, obj) -> str | None:
        active = self._active(obj)
        return active.fingerprint if active else None

    def get_last_rotation(self, obj) -> str | None:
        active = self._active(obj)
        return active.promoted_at.isoformat() if active and active.promoted_at else None

    def get_versions(self, obj) -> list[dict]:
        return [
            {
                "number": v.number,
                "status": v.status,
                "fingerprint": v.fingerprint,
                "created_at": v.created_at,
                "promoted_at": v.promoted_at,
                "grace_until": v.grace_until,
                "revoked_at": v.revoked_at,
                "test_ok": v.test_ok,
            }
            for v in self._versions(obj)
        ]


class CredentialInput(serializers.Serializer):
    integration = serializers.IntegerField()
    name = serializers.CharField(max_length=120)
    value = serializers.CharField(
        write_only=True, trim_whitespace=False, max_length=16 * 1024, style={"input_type": "password"}
    )


class CredentialVersionInput(serializers.Serializer):
    value = serializers.CharField(
        write_only=True, trim_whitespace=False, max_length=16 * 1024, style={"input_type": "password"}
    )
    promote = serializers.BooleanField(default=False)
