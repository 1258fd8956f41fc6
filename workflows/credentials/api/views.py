"""Credentials over the API: values go in and never come out."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response

from governance.access.queries import restrict
from workflows.credentials import selectors, services
from workflows.credentials.api import serializers
from workflows.credentials.models import Credential
from workflows.integrations.models import Integration


class CredentialViewSet(viewsets.ViewSet):
    """Credentials of the integrations you manage them for. Values go in and never come out:
    responses carry fingerprints, versions and rotation dates. ``versions`` stages a new value
    (and promotes it when asked); the previous value stays valid for the grace period."""

    pagination_class = None
    portal_actions = {
        "list": "credential.manage",
        "retrieve": "credential.manage",
        "create": "credential.manage",
        "versions": "credential.manage",
    }
    queryset = Credential.objects.none()  # for the schema; the store is read through the selector

    def _visible(self):
        return selectors.credentials_visible_to(self.request.user)

    def _get(self, pk):
        try:
            return self._visible().get(pk=pk)
        except (Credential.DoesNotExist, ValueError, DjangoValidationError):
            raise Http404 from None

    @extend_schema(responses={200: serializers.CredentialOutput(many=True)})
    def list(self, request):
        rows = self._visible().order_by("name", "id")[:500]
        return Response(serializers.CredentialOutput(rows, many=True).data)

    @extend_schema(responses={200: serializers.CredentialOutput})
    def retrieve(self, request, pk=None):
        return Response(serializers.CredentialOutput(self._get(pk)).data)

    @extend_schema(request=serializers.CredentialInput, responses={201: serializers.CredentialOutput})
    def create(self, request):
        data = serializers.CredentialInput(data=request.data)
        data.is_valid(raise_exception=True)
        integration = (
            restrict(Integration.objects.select_related("workspace"), request.user, "workflow.view")
            .filter(pk=data.validated_data["integration"])
            .first()
        )
        if integration is None:
            raise DRFValidationError({"integration": ["No such integration."]})
        created = services.credential_create(
            actor=request.user,
            integration=integration,
            name=data.validated_data["name"],
            value=data.validated_data["value"],
        )
        return Response(serializers.CredentialOutput(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.CredentialVersionInput, responses={201: serializers.CredentialOutput})
    @action(detail=True, methods=["post"])
    def versions(self, request, pk=None):
        credential = self._get(pk)
        data = serializers.CredentialVersionInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.credential_stage(
            actor=request.user, credential=credential, value=data.validated_data["value"]
        )
        if data.validated_data["promote"]:
            services.credential_promote(actor=request.user, version=version)
        return Response(serializers.CredentialOutput(credential).data, status=status.HTTP_201_CREATED)
