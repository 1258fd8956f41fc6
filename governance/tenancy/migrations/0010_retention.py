"""Who decides how long the ledger keeps events: a workspace's compliance officers set the
frameworks in scope and place or release its legal holds; its auditors read them. The
organisation's platform administrators place holds over the whole organisation; its organisation
auditors read those."""

from django.db import migrations

GRANTS = {
    "retention.view": ["compliance_officer", "auditor"],
    "retention.manage": ["compliance_officer"],
    "retention.view_organization": ["platform_admin", "organization_auditor"],
    "retention.manage_organization": ["platform_admin"],
}


def grant(apps, schema_editor):
    RolePermission = apps.get_model("tenancy", "RolePermission")
    for action, roles in GRANTS.items():
        for role in roles:
            RolePermission.objects.get_or_create(role_id=role, action=action)


def revoke(apps, schema_editor):
    apps.get_model("tenancy", "RolePermission").objects.filter(action__in=list(GRANTS)).delete()


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0009_organization_auditor")]

    operations = [migrations.RunPython(grant, revoke)]
