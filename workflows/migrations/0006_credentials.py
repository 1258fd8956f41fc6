"""The secrets store's tables; the router creates them only in the ``secrets`` database."""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import governance.crypto.fields


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0005_connectors_outbound"),
        ("workflows", "0005_service_accounts"),
    ]

    operations = [
        migrations.CreateModel(
            name="Credential",
            fields=[
                (
                    "id",
                    models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False),
                ),
                ("workspace_id", models.BigIntegerField(db_index=True)),
                ("integration_id", models.BigIntegerField(db_index=True)),
                ("name", models.CharField(max_length=120)),
                (
                    "rotation_required",
                    models.BooleanField(
                        default=False,
                        help_text="Set by the incident runbook: a new value must be staged and promoted.",
                    ),
                ),
                ("created_by_id", models.BigIntegerField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.CreateModel(
            name="CredentialVersion",
            fields=[
                (
                    "id",
                    models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False),
                ),
                ("workspace_id", models.BigIntegerField()),
                ("number", models.PositiveIntegerField()),
                (
                    "value",
                    governance.crypto.fields.EncryptedTextField(
                        null=True, purpose="credentials", workspace_field="workspace_id"
                    ),
                ),
                ("fingerprint", models.CharField(max_length=32)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("staged", "Staged: not used yet"),
                            ("active", "Active"),
                            ("grace", "Previous: valid for running executions until its grace ends"),
                            ("revoked", "Revoked: value erased"),
                        ],
                        default="staged",
                        max_length=16,
                    ),
                ),
                ("created_by_id", models.BigIntegerField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("tested_at", models.DateTimeField(blank=True, null=True)),
                ("test_ok", models.BooleanField(blank=True, null=True)),
                ("test_message", models.CharField(blank=True, max_length=300)),
                ("promoted_at", models.DateTimeField(blank=True, null=True)),
                ("promoted_by_id", models.BigIntegerField(blank=True, null=True)),
                ("grace_until", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "credential",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="workflows.credential",
                    ),
                ),
            ],
            options={"ordering": ["credential", "-number"]},
        ),
        migrations.AddConstraint(
            model_name="credential",
            constraint=models.UniqueConstraint(
                fields=("integration_id", "name"), name="credential_name_per_integration"
            ),
        ),
        migrations.AddConstraint(
            model_name="credentialversion",
            constraint=models.UniqueConstraint(
                fields=("credential", "number"), name="credential_version_number"
            ),
        ),
        migrations.AddConstraint(
            model_name="credentialversion",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "active")),
                fields=("credential",),
                name="credential_one_active_version",
            ),
        ),
    ]
