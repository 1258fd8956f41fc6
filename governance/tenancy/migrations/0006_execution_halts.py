"""Who may halt executions: a workspace's owners and compliance officers, and the platform
administrators (every workspace of their organisation, and the whole organisation at once)."""

from django.db import migrations

GRANTS = {
    "execution.halt": ["workspace_owner", "compliance_officer", "platform_admin"],
    "organization.halt": ["platform_admin"],
}


def grant(apps, schema_editor):
    RolePermission = apps.get_model("tenancy", "RolePermission")
    for action, roles in GRANTS.items():
        for role in roles:
            RolePermission.objects.get_or_create(role_id=role, action=action)


def revoke(apps, schema_editor):
    apps.get_model("tenancy", "RolePermission").objects.filter(action__in=list(GRANTS)).delete()


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0005_keys_integrations")]

    operations = [migrations.RunPython(grant, revoke)]
