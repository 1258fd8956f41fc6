"""Service accounts over the API: create one, rotate its token (the plaintext is returned once)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from governance.core.api import IdCursorPagination
from workflows.service_accounts import services
from workflows.service_accounts.api import serializers
from workflows.service_accounts.models import ServiceAccount


class ServiceAccountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Service accounts of the workspaces you manage them in; ``rotate`` issues a new token and
    returns it once (the previous one keeps working for the grace window)."""

    queryset = ServiceAccount.objects.select_related("workspace", "integration").prefetch_related("tokens")
    serializer_class = serializers.ServiceAccountOutput
    pagination_class = IdCursorPagination
    portal_actions = {"rotate": "service_account.manage"}

    @extend_schema(
        request=serializers.ServiceAccountCreateInput, responses={201: serializers.ServiceAccountOutput}
    )
    def create(self, request):
        data = serializers.ServiceAccountCreateInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        account = services.service_account_create(actor=request.user, **data.validated_data)
        return Response(serializers.ServiceAccountOutput(account).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={201: serializers.IssuedTokenOutput})
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        issued = services.service_account_token_issue(actor=request.user, account=self.get_object())
        response = Response(serializers.IssuedTokenOutput(issued).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"  # the plaintext must not linger in any cache
        return response
