"""Retention: frameworks per workspace, legal holds, archive runs and the leaves they keep.

A sealed event may now be deleted, but only once its leaf is kept (``audit_prunedleaf``), and on
PostgreSQL only through ``audit_prune`` (see ``audit.triggers.POSTGRES_PRUNE``).
"""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from audit import triggers


def install_prune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(triggers.POSTGRES_PRUNE, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in triggers.SQLITE_PRUNE:
            schema_editor.execute(statement, params=None)


def uninstall_prune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(triggers.POSTGRES_PRUNE_REVERSE, params=None)
        schema_editor.execute(GUARD_0008, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in triggers.SQLITE_PRUNE_REVERSE:
            schema_editor.execute(statement, params=None)


GUARD_0008 = f"""
CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.sequence IS NULL AND NEW.sequence IS NOT NULL
       AND OLD.leaf_hash IS NULL AND OLD.chain_hash IS NULL AND OLD.sealed_at IS NULL
       AND {triggers.unchanged((*triggers.EVENT_CONTENT_COLUMNS, "search", "transaction_id"))} THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit ledger is append-only: % of event % refused', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0010_evidence_order_organisation"),
        ("tenancy", "0009_organization_auditor"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="LedgerArchive",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("uid", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("planned", "Planned"),
                            ("archiving", "Writing the archive"),
                            ("pruning", "Pruning"),
                            ("done", "Done"),
                            ("failed", "Failed"),
                        ],
                        default="planned",
                        max_length=16,
                    ),
                ),
                ("requested_by", models.CharField(max_length=254)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("head_number", models.BigIntegerField()),
                ("tree_size", models.BigIntegerField()),
                ("criteria", models.JSONField(default=dict)),
                ("events_total", models.BigIntegerField(default=0)),
                ("events_pruned", models.BigIntegerField(default=0)),
                (
                    "events_kept",
                    models.BigIntegerField(default=0, help_text="Chosen but kept: a hold placed since."),
                ),
                ("first_sequence", models.BigIntegerField(blank=True, null=True)),
                ("last_sequence", models.BigIntegerField(blank=True, null=True)),
                ("file_name", models.CharField(blank=True, max_length=100)),
                ("file_size", models.BigIntegerField(blank=True, null=True)),
                ("file_sha256", models.CharField(blank=True, max_length=64)),
                ("manifest_sha256", models.CharField(blank=True, max_length=64)),
                ("error", models.TextField(blank=True)),
            ],
            options={
                "ordering": ["-id"],
            },
        ),
        migrations.CreateModel(
            name="PrunedLeaf",
            fields=[
                ("sequence", models.BigIntegerField(primary_key=True, serialize=False)),
                ("leaf_hash", models.BinaryField()),
                ("chain_hash", models.BinaryField()),
                (
                    "archive",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="audit.ledgerarchive",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="RetentionPolicy",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("frameworks", models.JSONField(blank=True, default=list)),
                (
                    "minimum_months",
                    models.PositiveIntegerField(
                        blank=True, help_text="A longer minimum of your own, in months (optional).", null=True
                    ),
                ),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "workspace",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="retention_policy",
                        to="tenancy.workspace",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "retention policies",
            },
        ),
        migrations.CreateModel(
            name="LegalHold",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("uid", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("subject_label", models.CharField(blank=True, editable=False, max_length=254)),
                (
                    "target_type",
                    models.CharField(
                        blank=True,
                        help_text="Only events about this kind of object, e.g. workflows.workflow.",
                        max_length=100,
                    ),
                ),
                (
                    "target_id",
                    models.CharField(blank=True, help_text="…and this object's id.", max_length=64),
                ),
                (
                    "starts_on",
                    models.DateField(blank=True, help_text="Events from this day (UTC).", null=True),
                ),
                (
                    "ends_on",
                    models.DateField(
                        blank=True, help_text="Events up to this day, included (UTC).", null=True
                    ),
                ),
                ("reason", models.TextField()),
                ("placed_at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ("released_at", models.DateTimeField(blank=True, editable=False, null=True)),
                ("release_reason", models.TextField(blank=True, editable=False)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenancy.organization",
                    ),
                ),
                (
                    "owner",
                    models.ForeignKey(
                        help_text="Who answers for the hold (legal counsel, the investigation's lead).",
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "placed_by",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "released_by",
                    models.ForeignKey(
                        blank=True,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "subject",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        help_text="Only the events this person did or that concern them.",
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        blank=True,
                        help_text="Empty: every workspace of the organisation and its own events.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenancy.workspace",
                    ),
                ),
            ],
            options={
                "ordering": ["-id"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("released_at__isnull", True)),
                        fields=["organization"],
                        name="legal_hold_active",
                    )
                ],
            },
        ),
        migrations.AddIndex(
            model_name="rowchange",
            index=models.Index(fields=["event"], name="audit_rowchange_event"),
        ),
        migrations.RunPython(install_prune, uninstall_prune),
        # The completeness backstop on what decides retention (archive runs are the job's
        # bookkeeping: each of their steps is a ledger event of its own).
        triggers.capture_operation(("audit_legalhold", "id", ()), ("audit_retentionpolicy", "id", ())),
    ]
