"""The seven roles and what each may do. Changing a role's permissions is a new migration,
reviewed like any code change; the control panel shows this table read-only."""

from django.db import migrations

# code, name, scope, description, actions
ROLES = [
    (
        "platform_admin",
        "Platform administrator",
        "organization",
        "Manages the organisation, user accounts and workspaces. Sees no workflow or execution "
        "data unless also a member of the workspace.",
        [
            "admin.access",
            "dashboard.view",
            "organization.view",
            "organization.manage",
            "user.view",
            "user.manage",
            "role.view",
            "workspace.create",
            "workspace.view",
            "workspace.manage",
            "membership.view",
            "membership.manage",
        ],
    ),
    (
        "workspace_owner",
        "Workspace owner",
        "workspace",
        "Manages the workspace's workflows, integrations, credentials, service accounts and members. "
        "Cannot access other workspaces.",
        [
            "admin.access",
            "dashboard.view",
            "role.view",
            "workspace.view",
            "workspace.manage",
            "membership.view",
            "membership.manage",
            "grant.manage",
            "workflow.view",
            "workflow.edit",
            "workflow.activate",
            "execution.view",
            "execution.trigger",
            "integration.manage",
            "credential.manage",
            "service_account.manage",
            "audit.view",
        ],
    ),
    (
        "workflow_builder",
        "Workflow builder",
        "workspace",
        "Creates and changes workflows of the workspace and submits changes for approval. Cannot "
        "manage integrations or user accounts.",
        ["dashboard.view", "workspace.view", "workflow.view", "workflow.edit", "execution.view"],
    ),
    (
        "workflow_operator",
        "Workflow operator",
        "workspace",
        "Triggers, monitors, retries and stops executions. Cannot change workflow definitions.",
        ["dashboard.view", "workspace.view", "workflow.view", "execution.view", "execution.trigger"],
    ),
    (
        "viewer",
        "Viewer",
        "workspace",
        "Reads dashboards and reports. Cannot trigger or change anything.",
        ["dashboard.view", "workspace.view", "workflow.view", "execution.view"],
    ),
    (
        "compliance_officer",
        "Compliance officer",
        "workspace",
        "Reviews workflow changes and approves or rejects them; quarantines workflows; reads the audit trail.",
        [
            "admin.access",
            "dashboard.view",
            "role.view",
            "workspace.view",
            "membership.view",
            "workflow.view",
            "workflow.approve",
            "workflow.activate",
            "execution.view",
            "audit.view",
        ],
    ),
    (
        "auditor",
        "Auditor",
        "workspace",
        "Reads the ledger and orders evidence packages of the workspaces assigned to them.",
        [
            "admin.access",
            "dashboard.view",
            "role.view",
            "workspace.view",
            "membership.view",
            "workflow.view",
            "audit.view",
            "evidence.order",
        ],
    ),
]


def create_roles(apps, schema_editor):
    Role = apps.get_model("tenancy", "Role")
    RolePermission = apps.get_model("tenancy", "RolePermission")
    for position, (code, name, scope, description, actions) in enumerate(ROLES):
        role, _ = Role.objects.update_or_create(
            code=code,
            defaults={"name": name, "scope": scope, "description": description, "position": position},
        )
        RolePermission.objects.filter(role=role).exclude(action__in=actions).delete()
        for action in actions:
            RolePermission.objects.get_or_create(role=role, action=action)


def remove_roles(apps, schema_editor):
    apps.get_model("tenancy", "Role").objects.filter(code__in=[row[0] for row in ROLES]).delete()


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0001_initial")]

    operations = [migrations.RunPython(create_roles, remove_roles)]
