"""Who may decide a run's approval or the review of an AI decision: a workspace's owners,
compliance officers and operators — the roles a human_approval or ai_prompt step may name. Never
the builder who wrote the step, nor the read-only roles."""

from django.db import migrations

GRANTS = {"human_task.decide": ["workspace_owner", "compliance_officer", "workflow_operator"]}


def grant(apps, schema_editor):
    RolePermission = apps.get_model("tenancy", "RolePermission")
    for action, roles in GRANTS.items():
        for role in roles:
            RolePermission.objects.get_or_create(role_id=role, action=action)


def revoke(apps, schema_editor):
    apps.get_model("tenancy", "RolePermission").objects.filter(action__in=list(GRANTS)).delete()


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0007_ai_register")]

    operations = [migrations.RunPython(grant, revoke)]
