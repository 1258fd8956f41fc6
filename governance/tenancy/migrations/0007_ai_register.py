"""Who keeps the AI register: compliance officers propose and approve its changes (one proposes,
another approves); every role of the organisation may read it, since builders choose models from
it and auditors check it."""

from django.db import migrations

GRANTS = {
    "ai_register.view": [
        "platform_admin",
        "workspace_owner",
        "workflow_builder",
        "workflow_operator",
        "viewer",
        "compliance_officer",
        "auditor",
    ],
    "ai_register.manage": ["compliance_officer"],
}


def grant(apps, schema_editor):
    RolePermission = apps.get_model("tenancy", "RolePermission")
    for action, roles in GRANTS.items():
        for role in roles:
            RolePermission.objects.get_or_create(role_id=role, action=action)


def revoke(apps, schema_editor):
    apps.get_model("tenancy", "RolePermission").objects.filter(action__in=list(GRANTS)).delete()


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0006_execution_halts")]

    operations = [migrations.RunPython(grant, revoke)]
