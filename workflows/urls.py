from django.urls import path

from workflows import views

urlpatterns = [
    path("", views.workflow_list, name="workflow-list"),
    path("new/", views.workflow_create, name="workflow-create"),
    path("schema.json", views.definition_schema, name="workflow-schema"),
    path("integrations/", views.integrations, name="integrations"),
    path("integrations/requests/<int:request_id>/", views.integration_request, name="integration-request"),
    path("<int:workflow_id>/", views.workflow_detail, name="workflow-detail"),
    path("<int:workflow_id>/edit/", views.workflow_edit, name="workflow-edit"),
    path("changes/<int:change_id>/", views.change_detail, name="change-detail"),
    path("changes/<int:change_id>/submit/", views.change_submit, name="change-submit"),
    path("changes/<int:change_id>/withdraw/", views.change_withdraw, name="change-withdraw"),
]
