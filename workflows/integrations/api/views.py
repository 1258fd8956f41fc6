"""Requests to connect integrations over the API: the same services as the integrations page."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from governance.core.api import IdCursorPagination
from workflows.integrations import selectors, services
from workflows.integrations.api import serializers
from workflows.integrations.models import IntegrationRequest


class IntegrationRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Requests to connect integrations: yours, those your reports ask you to approve, and (owners)
    those of your workspaces. Financial and HR systems connect only when the requester's manager
    approves through ``decide``."""

    queryset = IntegrationRequest.objects.all()  # for the schema; get_queryset narrows it
    serializer_class = serializers.IntegrationRequestOutput
    pagination_class = IdCursorPagination
    visibility_by_selector = True
    # Visibility is the selector's (a manager may hold no role in the workspace); requesting needs
    # integration.manage; deciding is the manager's, checked by the service.
    filter_backends: list = []
    portal_actions = {
        "list": "dashboard.view",
        "retrieve": "dashboard.view",
        "create": "integration.manage",
        "decide": "dashboard.view",
    }

    def get_queryset(self):
        return selectors.integration_requests_visible_to(self.request.user).order_by("id")

    @extend_schema(
        request=serializers.IntegrationRequestInput, responses={201: serializers.IntegrationRequestOutput}
    )
    def create(self, request):
        data = serializers.IntegrationRequestInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        created = services.integration_request_create(actor=request.user, **data.validated_data)
        return Response(serializers.IntegrationRequestOutput(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.ManagerDecisionInput, responses={200: serializers.IntegrationRequestOutput}
    )
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        item = self.get_object()
        data = serializers.ManagerDecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        decided = services.integration_request_decide(actor=request.user, request=item, **data.validated_data)
        return Response(serializers.IntegrationRequestOutput(decided).data)
