"""Who may stop a workflow (deactivate or quarantine it): owners and compliance officers."""

from django.db import migrations

GRANTS = {"workflow.stop": ["workspace_owner", "compliance_officer"]}


def grant(apps, schema_editor):
    RolePermission = apps.get_model("tenancy", "RolePermission")
    for action, roles in GRANTS.items():
        for role in roles:
            RolePermission.objects.get_or_create(role_id=role, action=action)


def revoke(apps, schema_editor):
    apps.get_model("tenancy", "RolePermission").objects.filter(action__in=list(GRANTS)).delete()


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0003_policy_permissions")]

    operations = [migrations.RunPython(grant, revoke)]
