"""Human tasks: the decisions human_approval steps wait for."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from audit import triggers


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0006_execution_halts"),
        ("workflows", "0011_webhook_secrets"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="HumanTask",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("step_id", models.CharField(max_length=40)),
                ("approver_role", models.CharField(max_length=40)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("open", "Waiting for a decision"),
                            ("approved", "Approved"),
                            ("rejected", "Rejected"),
                            ("timed_out", "Timed out"),
                            ("cancelled", "Cancelled with its run"),
                            ("halted", "Frozen by a halt"),
                        ],
                        default="open",
                        editable=False,
                        max_length=16,
                    ),
                ),
                ("due_at", models.DateTimeField()),
                ("on_timeout", models.CharField(default="reject", max_length=8)),
                ("decided_at", models.DateTimeField(blank=True, null=True)),
                ("comment", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "decided_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "execution",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="human_tasks",
                        to="workflows.execution",
                    ),
                ),
                (
                    "step_run",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="human_task",
                        to="workflows.steprun",
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="tenancy.workspace"
                    ),
                ),
            ],
            options={
                "ordering": ["due_at", "id"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("status", "open")),
                        fields=["workspace", "approver_role", "due_at"],
                        name="workflows_humantask_open",
                    )
                ],
            },
        ),
        # The backstop: every write of a task is captured; the engine names each in its events.
        triggers.capture_operation(("workflows_humantask", "id", ())),
    ]
