"""Input and output serializers of the service accounts API (a token's plaintext only once, on issue)."""

from __future__ import annotations

from rest_framework import serializers

from governance.access.queries import restrict
from governance.tenancy.models import Workspace
from workflows.integrations.models import Integration
from workflows.service_accounts.models import MAX_ROTATION_DAYS, SERVICE_ACCOUNT_SCOPES


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
