"""Executions over the API: list and read runs, start one, stop one — the same services and
decision point as the pages."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from governance.access.api import DecisionPointPermission
from governance.access.decision import decide
from governance.core.api import IdCursorPagination
from workflows.executions import selectors, services
from workflows.executions.api import serializers
from workflows.executions.models import Execution


class NewestFirstPagination(IdCursorPagination):
    """Keyset pages of runs, newest first: on the index of a workflow's runs by creation time when
    the list is filtered by workflow (the id breaks ties)."""

    ordering = ("-created_at", "-id")


def _detail(request, execution: Execution) -> dict:
    """A run with its steps; the redacted inputs and outputs only for those who may see run data
    (a service account that may only trigger gets the digests)."""
    execution = (
        Execution.objects.select_related("workspace", "workflow", "version", "triggered_by")
        .prefetch_related(Prefetch("step_runs", queryset=selectors.step_runs_in_order()))
        .get(pk=execution.pk)
    )
    show_data = decide(request.user, "execution.view", execution).allowed
    return serializers.ExecutionDetailOutput(execution, context={"show_data": show_data}).data


class RunsReadPermission(DecisionPointPermission):
    """Reading runs asks for no role up front: a list holds only the runs you may see (the
    visible-to filter) and any other run answers 404, as if it did not exist. So a platform
    administrator who is not a member of a workspace learns nothing of its runs, not even that
    there are any. Every other action is decided as usual, first for the request, then per run."""

    def has_permission(self, request, view) -> bool:
        if getattr(view, "action", None) in ("list", "retrieve"):
            user = request.user
            return bool(user and user.is_authenticated and user.is_active)
        return super().has_permission(request, view)


class ExecutionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs you can see, newest first (filters: ``workflow``, ``status``, ``trigger_kind``); one run
    with its step attempts; ``cancel`` stops a run, with a reason."""

    queryset = Execution.objects.select_related("workspace", "workflow", "version", "triggered_by")
    serializer_class = serializers.ExecutionOutput
    pagination_class = NewestFirstPagination
    permission_classes = [RunsReadPermission]
    portal_actions = {
        "list": "execution.view",
        "retrieve": "execution.view",
        "cancel": "execution.trigger",
        "retry": "execution.trigger",
        "resume": "execution.trigger",
    }

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if self.action != "list":
            return queryset
        filters = serializers.ExecutionFilterInput(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        return selectors.executions_filtered(
            queryset,
            workflow_id=data.get("workflow"),
            status=data.get("status"),
            trigger_kind=data.get("trigger_kind"),
        )

    @extend_schema(parameters=[serializers.ExecutionFilterInput])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: serializers.ExecutionDetailOutput})
    def retrieve(self, request, *args, **kwargs):
        return Response(_detail(request, self.get_object()))

    @extend_schema(
        request=serializers.ExecutionCancelInput, responses={200: serializers.ExecutionDetailOutput}
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        execution = self.get_object()
        data = serializers.ExecutionCancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        execution = services.execution_cancel(
            actor=request.user, execution=execution, reason=data.validated_data["reason"]
        )
        return Response(_detail(request, execution))

    @extend_schema(
        request=serializers.ExecutionRestartInput, responses={200: serializers.ExecutionDetailOutput}
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Run a failed run's failed step again, as a new attempt with the inputs it had."""
        return self._restart(request, services.execution_retry)

    @extend_schema(
        request=serializers.ExecutionRestartInput, responses={200: serializers.ExecutionDetailOutput}
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Go on with a halted run once its halt was released."""
        return self._restart(request, services.execution_resume)

    def _restart(self, request, service):
        execution = self.get_object()
        data = serializers.ExecutionRestartInput(data=request.data)
        data.is_valid(raise_exception=True)
        execution = service(actor=request.user, execution=execution, reason=data.validated_data["reason"])
        return Response(_detail(request, execution))


class WorkflowExecutionViewSet(viewsets.GenericViewSet):
    """Start a run of a workflow's active, approved version: ``POST /api/v1/workflows/{id}/executions/``.
    201 with the new run; 200 with the earlier run when the ``idempotency_key`` was used before."""

    queryset = Execution.objects.none()  # for the schema; the workflow is found through the selector
    pagination_class = None
    portal_actions = {"create": "execution.trigger"}

    @extend_schema(
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The workflow's id.")],
        request=serializers.ExecutionTriggerInput,
        responses={201: serializers.ExecutionDetailOutput, 200: serializers.ExecutionDetailOutput},
    )
    def create(self, request, id=None):
        workflow_id = int(id)
        workflow = (
            selectors.workflow_for_runs(request.user, workflow_id)
            if workflow_id <= serializers.MAX_ID
            else None
        )
        if workflow is None:
            raise Http404
        data = serializers.ExecutionTriggerInput(data=request.data)
        data.is_valid(raise_exception=True)
        key = data.validated_data["idempotency_key"].strip()
        earlier = bool(key) and Execution.objects.filter(workflow=workflow, idempotency_key=key).exists()
        execution = services.execution_trigger(
            actor=request.user, workflow=workflow, input=data.validated_data["input"], idempotency_key=key
        )
        return Response(
            _detail(request, execution), status=status.HTTP_200_OK if earlier else status.HTTP_201_CREATED
        )
