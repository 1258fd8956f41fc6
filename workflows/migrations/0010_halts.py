"""Halts: the incident stop of a workspace or a whole organisation, released by a second person;
and who quarantined a workflow, for the same rule."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from audit import triggers


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0006_execution_halts"),
        ("workflows", "0009_executions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="workflow",
            name="quarantined_by",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.CreateModel(
            name="Halt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "scope",
                    models.CharField(
                        choices=[("workspace", "Workspace"), ("organization", "Whole organisation")],
                        max_length=16,
                    ),
                ),
                ("reason", models.TextField()),
                ("raised_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("released_at", models.DateTimeField(blank=True, null=True)),
                ("release_reason", models.TextField(blank=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenancy.organization",
                    ),
                ),
                (
                    "raised_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "released_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenancy.workspace",
                    ),
                ),
            ],
            options={
                "ordering": ["-raised_at", "-id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("scope", "workspace"), ("workspace__isnull", False)),
                            models.Q(("scope", "organization"), ("workspace__isnull", True)),
                            _connector="OR",
                        ),
                        name="workflows_halt_scope",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("released_by__isnull", True),
                            models.Q(("released_by", models.F("raised_by")), _negated=True),
                            _connector="OR",
                        ),
                        name="workflows_halt_two_people",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("released_at__isnull", True), ("released_by__isnull", True)),
                            models.Q(("released_at__isnull", False), ("released_by__isnull", False)),
                            _connector="OR",
                        ),
                        name="workflows_halt_release_complete",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("released_at__isnull", True)),
                        fields=("organization", "workspace"),
                        name="workflows_halt_one_active",
                        nulls_distinct=False,
                    ),
                ],
            },
        ),
        migrations.AddIndex(
            model_name="execution",
            index=models.Index(
                condition=models.Q(("status__in", ["queued", "running", "waiting"])),
                fields=["workspace"],
                name="workflows_execution_open",
            ),
        ),
        # The backstop: every write of a halt is captured; the services name each in their events.
        triggers.capture_operation(("workflows_halt", "id", ())),
    ]
