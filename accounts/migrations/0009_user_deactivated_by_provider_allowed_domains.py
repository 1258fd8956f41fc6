"""Identity providers list the e-mail domains they may sign in; an account remembers who
deactivated it. Accounts already deactivated: those SCIM deprovisioned count as deactivated by
provisioning, every other one as deactivated by an administrator (SCIM may not revive them)."""

from django.db import migrations, models

import accounts.models


def who_deactivated(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    inactive = User.objects.filter(is_active=False)
    inactive.filter(deprovisioned_at__isnull=False).update(deactivated_by="provisioning")
    inactive.filter(deprovisioned_at__isnull=True).update(deactivated_by="administrator")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_identity_providers"),
    ]

    operations = [
        migrations.AddField(
            model_name="identityprovider",
            name="allowed_domains",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="E-mail domains this provider may sign in (e.g. example.com); each listed exactly.",
                validators=[accounts.models._domain_list_validator],
            ),
        ),
        migrations.AddField(
            model_name="user",
            name="deactivated_by",
            field=models.CharField(
                blank=True,
                choices=[
                    ("administrator", "An administrator"),
                    ("provisioning", "The identity provider (SCIM)"),
                    ("system", "The system (a command or a job)"),
                ],
                help_text="Who deactivated the account (empty while it is active).",
                max_length=16,
            ),
        ),
        migrations.RunPython(who_deactivated, migrations.RunPython.noop),
    ]
