"""Workflows and their changes over the API: the same services as the pages and the control panel."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from governance.core.api import IdCursorPagination
from workflows.changes import selectors, services
from workflows.changes.api import serializers
from workflows.changes.models import ChangeRequest, Workflow, WorkflowVersion


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
        "apply": "workflow.activate",
    }

    def get_queryset(self):
        queryset = selectors.changes_visible_to(self.request.user).prefetch_related("approvals__reviewer")
        if self.request.query_params.get("inbox") == "mine":
            queryset = queryset.filter(pk__in=selectors.inbox_for(self.request.user).values("pk"))
        return queryset

    @extend_schema(parameters=[OpenApiParameter("inbox", str, enum=["mine"], required=False)])
    def list(self, request, *args, **kwargs):
        if request.query_params.get("inbox") not in (None, "mine"):
            raise ValidationError({"inbox": ["The only inbox is 'mine'."]})
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

    @extend_schema(request=None, responses={200: serializers.ChangeOutput})
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        """*Apply now*: an officer or owner applies an approved change that waits, if the policies
        allow it at this moment (403 with the reason otherwise)."""
        change = services.change_request_apply_now(actor=request.user, change=self.get_object())
        return Response(serializers.ChangeOutput(ChangeRequest.objects.get(pk=change.pk)).data)
