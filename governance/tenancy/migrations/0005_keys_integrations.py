"""Who manages keys, connectors, network exceptions and service accounts.

Platform administrators see key status and manage network exceptions; the platform's own key is
rotated by the operator at the command line. Workspace owners alone manage their workspace's keys
(an organisation-wide role holding key.manage could swap any workspace's key for material it
chose) and alone reactivate a disabled service account; compliance officers vet connector types
and may start the credential-rotation runbook in an incident."""

from django.db import migrations

GRANTS = {
    "service_account.reactivate": ["workspace_owner"],
    "credential.rotate_all": ["workspace_owner", "compliance_officer"],
    "connector.vet": ["platform_admin", "compliance_officer"],
    "network.allowlist": ["platform_admin"],
    "key.view": ["platform_admin", "workspace_owner", "compliance_officer", "auditor"],
    "key.manage": ["workspace_owner"],
}


def grant(apps, schema_editor):
    RolePermission = apps.get_model("tenancy", "RolePermission")
    for action, roles in GRANTS.items():
        for role in roles:
            RolePermission.objects.get_or_create(role_id=role, action=action)


def revoke(apps, schema_editor):
    apps.get_model("tenancy", "RolePermission").objects.filter(action__in=list(GRANTS)).delete()


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0004_workflow_stop")]

    operations = [migrations.RunPython(grant, revoke)]
