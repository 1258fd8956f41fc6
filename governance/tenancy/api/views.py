"""Workspaces (read-only) and memberships (full lifecycle) over the API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from governance.core.api import IdCursorPagination
from governance.tenancy import services
from governance.tenancy.api import serializers
from governance.tenancy.models import Membership, Workspace


class WorkspaceViewSet(viewsets.ReadOnlyModelViewSet):
    """Workspaces you can see."""

    queryset = Workspace.objects.select_related("organization")
    serializer_class = serializers.WorkspaceOutput
    pagination_class = IdCursorPagination


class MembershipViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Who holds which role where. Writes go through the tenancy services."""

    queryset = Membership.objects.select_related("user", "role", "workspace", "organization")
    serializer_class = serializers.MembershipOutput
    pagination_class = IdCursorPagination
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(request=serializers.MembershipCreateInput, responses={201: serializers.MembershipOutput})
    def create(self, request):
        data = serializers.MembershipCreateInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        workspace = data.validated_data["workspace"]
        membership = services.membership_create(
            actor=request.user,
            user=data.validated_data["user"],
            role=data.validated_data["role"],
            workspace=workspace,
            organization=workspace.organization if workspace else request.user.organization,
        )
        return Response(serializers.MembershipOutput(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.MembershipUpdateInput, responses={200: serializers.MembershipOutput})
    def partial_update(self, request, pk=None):
        membership = self.get_object()
        data = serializers.MembershipUpdateInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            actor=request.user, membership=membership, role=data.validated_data["role"]
        )
        return Response(serializers.MembershipOutput(membership).data)

    def perform_destroy(self, instance) -> None:
        services.membership_remove(actor=self.request.user, membership=instance)
