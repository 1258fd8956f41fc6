"""Workflows and their changes over the API: the same services as the pages and the control panel."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response

from governance.access.queries import restrict
from governance.core.api import IdCursorPagination
from workflows import credentials, selectors, services
from workflows.api import serializers
from workflows.models import (
    ChangeRequest,
    Credential,
    Integration,
    IntegrationRequest,
    ServiceAccount,
    Workflow,
    WorkflowVersion,
)


class WorkflowViewSet(viewsets.ReadOnlyModelViewSet):
    """Workflows you can see; create one, or save a new version of one."""

    queryset = Workflow.objects.select_related("workspace", "active_version")
    serializer_class = serializers.WorkflowOutput
    pagination_class = IdCursorPagination

    @extend_schema(request=serializers.WorkflowCreateInput, responses={201: serializers.ChangeOutput})
    def create(self, request):
        data = serializers.WorkflowCreateInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        change = services.workflow_create(actor=request.user, **data.validated_data)
        return Response(serializers.ChangeOutput(change).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.VersionCreateInput, responses={201: serializers.ChangeOutput})
    @action(detail=True, methods=["post"])
    def versions(self, request, pk=None):
        workflow = self.get_object()
        data = serializers.VersionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        base_id = data.validated_data["base_version"]
        base = WorkflowVersion.objects.filter(pk=base_id, workflow=workflow).first() if base_id else None
        change = services.workflow_version_create(
            actor=request.user,
            workflow=workflow,
            base_version=base,
            definition=data.validated_data["definition"],
            summary=data.validated_data["summary"],
        )
        return Response(serializers.ChangeOutput(change).data, status=status.HTTP_201_CREATED)


class ChangeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Change requests you can see; ``?inbox=mine`` lists those waiting for your review, oldest first."""

    queryset = ChangeRequest.objects.select_related(
        "workflow__workspace", "version", "author"
    ).prefetch_related("approvals__reviewer")
    serializer_class = serializers.ChangeOutput
    pagination_class = IdCursorPagination
    # Visibility is the selector's (it includes changes whose author reports to you); who may
    # review is decided per tier by the service (a manager needs no reviewing role).
    visibility_by_selector = True
    filter_backends: list = []
    portal_actions = {
        "list": "dashboard.view",
        "retrieve": "dashboard.view",
        "submit": "workflow.edit",
        "withdraw": "workflow.edit",
        "decide": "dashboard.view",
    }

    def get_queryset(self):
        queryset = selectors.changes_visible_to(self.request.user).prefetch_related("approvals__reviewer")
        if self.request.query_params.get("inbox") == "mine":
            queryset = queryset.filter(pk__in=selectors.inbox_for(self.request.user).values("pk"))
        return queryset

    @extend_schema(parameters=[OpenApiParameter("inbox", str, enum=["mine"], required=False)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses={200: serializers.ChangeOutput})
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        change = services.change_request_submit(actor=request.user, change=self.get_object())
        return Response(serializers.ChangeOutput(change).data)

    @extend_schema(request=None, responses={200: serializers.ChangeOutput})
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        change = services.change_request_withdraw(actor=request.user, change=self.get_object())
        return Response(serializers.ChangeOutput(change).data)

    @extend_schema(request=serializers.DecisionInput, responses={200: serializers.ChangeOutput})
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        change = self.get_object()
        data = serializers.DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        change = services.change_request_decide(actor=request.user, change=change, **data.validated_data)
        return Response(serializers.ChangeOutput(ChangeRequest.objects.get(pk=change.pk)).data)


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
        return credentials.credentials_visible_to(self.request.user)

    def _get(self, pk):
        from django.http import Http404

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
        created = credentials.credential_create(
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
        version = credentials.credential_stage(
            actor=request.user, credential=credential, value=data.validated_data["value"]
        )
        if data.validated_data["promote"]:
            credentials.credential_promote(actor=request.user, version=version)
        return Response(serializers.CredentialOutput(credential).data, status=status.HTTP_201_CREATED)
