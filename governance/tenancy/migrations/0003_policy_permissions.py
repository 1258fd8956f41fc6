"""Who may see and govern attribute policies, and who may take an on-call override."""

from django.db import migrations

GRANTS = {
    "policy.view": ["platform_admin", "workspace_owner", "compliance_officer", "auditor"],
    "policy.manage": ["compliance_officer"],
    "oncall.activate": ["workspace_owner", "workflow_builder", "workflow_operator"],
}


def grant(apps, schema_editor):
    RolePermission = apps.get_model("tenancy", "RolePermission")
    for action, roles in GRANTS.items():
        for role in roles:
            RolePermission.objects.get_or_create(role_id=role, action=action)


def revoke(apps, schema_editor):
    apps.get_model("tenancy", "RolePermission").objects.filter(action__in=list(GRANTS)).delete()


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0002_roles")]

    operations = [migrations.RunPython(grant, revoke)]
