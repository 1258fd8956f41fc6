"""Input and output serializers for workspaces and memberships."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from governance.tenancy import selectors
from governance.tenancy.models import WORKSPACE_SETTINGS, Membership, Role, Workspace


class WorkspaceOutput(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Workspace
        fields = ["id", "organization", *WORKSPACE_SETTINGS, "created_at"]
        read_only_fields = fields


class MemberUserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    display_name = serializers.CharField()


class MembershipOutput(serializers.ModelSerializer):
    user = MemberUserOutput(read_only=True)
    role = serializers.SlugRelatedField(slug_field="code", read_only=True)
    workspace = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "workspace", "role", "created_at"]
        read_only_fields = fields


class MembershipCreateInput(serializers.Serializer):
    """A new membership: the user (of your organisation), the workspace and the role code."""

    user = serializers.PrimaryKeyRelatedField(queryset=get_user_model().objects.none())
    workspace = serializers.PrimaryKeyRelatedField(
        queryset=Workspace.objects.none(), allow_null=True, required=False, default=None
    )
    role = serializers.SlugRelatedField(slug_field="code", queryset=Role.objects.all())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is None:  # schema generation: no actor, no choices
            return
        actor = request.user
        self.fields["user"].queryset = get_user_model().objects.filter(
            organization_id=actor.organization_id, is_active=True
        )
        # A workspace you cannot manage answers exactly like a missing one: no existence leak.
        self.fields["workspace"].queryset = selectors.workspaces_manageable_by(actor)


class MembershipUpdateInput(serializers.Serializer):
    """A role change: only the role of a membership can change."""

    role = serializers.SlugRelatedField(slug_field="code", queryset=Role.objects.all())
