"""Input and output serializers of the integration requests API."""

from __future__ import annotations

from rest_framework import serializers

from governance.access.queries import restrict
from governance.tenancy.models import Workspace
from workflows.integrations.models import IntegrationRequest, Sensitivity


class IntegrationRequestOutput(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = serializers.EmailField(source="requested_by.email", read_only=True)
    decided_by = serializers.EmailField(source="decided_by.email", read_only=True, allow_null=True)
    integration = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

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
