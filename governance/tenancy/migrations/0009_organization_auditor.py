"""The organisation auditor: an organisation-wide role that reads the organisation's own events
(sign-ins, MFA, SSO, SCIM, the administration of accounts and organisation-wide roles) and orders
evidence packages of them. It is given to the auditors and compliance officers who answer for the
organisation, besides their roles in workspaces; it reaches no workspace's events or data."""

from django.db import migrations

CODE = "organization_auditor"
NAME = "Organisation auditor"
DESCRIPTION = (
    "Reads the organisation's own events — sign-ins, MFA, single sign-on, SCIM and the administration "
    "of accounts and organisation-wide roles — and orders evidence packages of them. Sees no "
    "workspace's events or data unless also a member there."
)
ACTIONS = [
    "admin.access",
    "dashboard.view",
    "role.view",
    "user.view",
    "audit.view_organization",
    "evidence.order_organization",
]


def grant(apps, schema_editor):
    Role = apps.get_model("tenancy", "Role")
    RolePermission = apps.get_model("tenancy", "RolePermission")
    role, _ = Role.objects.update_or_create(
        code=CODE,
        defaults={"name": NAME, "scope": "organization", "description": DESCRIPTION, "position": 7},
    )
    for action in ACTIONS:
        RolePermission.objects.get_or_create(role=role, action=action)


def revoke(apps, schema_editor):
    apps.get_model("tenancy", "Role").objects.filter(code=CODE).delete()


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0008_human_task_decide")]

    operations = [migrations.RunPython(grant, revoke)]
