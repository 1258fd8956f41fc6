"""The builders' and operators' pages: workflows and their changes, runs, integrations and the
requests to connect them."""

from django.urls import path

from workflows.changes import views as changes
from workflows.executions import task_views as human_tasks
from workflows.executions import views as executions
from workflows.integrations import views as integrations

urlpatterns = [
    path("", changes.workflow_list, name="workflow-list"),
    path("new/", changes.workflow_create, name="workflow-create"),
    path("schema.json", changes.definition_schema, name="workflow-schema"),
    path("integrations/", integrations.integrations, name="integrations"),
    path(
        "integrations/requests/<int:request_id>/",
        integrations.integration_request,
        name="integration-request",
    ),
    path("<int:workflow_id>/", changes.workflow_detail, name="workflow-detail"),
    path("<int:workflow_id>/edit/", changes.workflow_edit, name="workflow-edit"),
    path("tasks/", human_tasks.task_inbox, name="task-inbox"),
    path("tasks/<int:task_id>/", human_tasks.task_detail, name="task-detail"),
    path("<int:workflow_id>/runs/", executions.workflow_runs, name="workflow-runs"),
    path("runs/<int:execution_id>/", executions.run_detail, name="run-detail"),
    path("runs/<int:execution_id>/cancel/", executions.run_cancel, name="run-cancel"),
    path("runs/<int:execution_id>/retry/", executions.run_retry, name="run-retry"),
    path("runs/<int:execution_id>/resume/", executions.run_resume, name="run-resume"),
    path("changes/<int:change_id>/", changes.change_detail, name="change-detail"),
    path("changes/<int:change_id>/submit/", changes.change_submit, name="change-submit"),
    path("changes/<int:change_id>/withdraw/", changes.change_withdraw, name="change-withdraw"),
    path("changes/<int:change_id>/apply/", changes.change_apply, name="change-apply"),
]
