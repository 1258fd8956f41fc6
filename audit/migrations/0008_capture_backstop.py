"""A capture backstop no writer can switch off (PostgreSQL).

- The capture trigger no longer skips transactions that set ``portal.audited``: every write to a
  governed table is captured, services' writes included.
- A capture's ``db_user``, ``transaction_id`` and ``occurred_at`` become column defaults, so the
  trigger (and any writer) no longer supplies them; the application role's grants leave them out.
- Ledger events get a ``transaction_id`` column (default ``txid_current()``, indexed, outside the
  canonical content, unchanged by sealing) so that the sealer can find the service events of a
  capture's transaction.
- Captures get a link to the event that records them (``event_id``), set only through the
  SECURITY DEFINER function ``audit_rowchange_settle``, which checks the link.

Captures queued before this migration have no service event with their transaction id, so each
becomes a ``db.row_changed`` event, as before.
"""

from django.db import migrations, models

from audit import triggers

GUARD = f"""
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

GUARD_BEFORE = f"""
CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.sequence IS NULL AND NEW.sequence IS NOT NULL
       AND OLD.leaf_hash IS NULL AND OLD.chain_hash IS NULL AND OLD.sealed_at IS NULL
       AND {triggers.unchanged((*triggers.EVENT_CONTENT_COLUMNS, "search"))} THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit ledger is append-only: % of event % refused', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in (
        "ALTER TABLE audit_auditevent ADD COLUMN transaction_id bigint DEFAULT txid_current()",
        "CREATE INDEX audit_event_transaction ON audit_auditevent (transaction_id)",
        GUARD,
        "ALTER TABLE audit_rowchange ALTER COLUMN db_user SET DEFAULT current_user",
        "ALTER TABLE audit_rowchange ALTER COLUMN transaction_id SET DEFAULT txid_current()",
        "ALTER TABLE audit_rowchange ALTER COLUMN occurred_at SET DEFAULT clock_timestamp()",
        triggers.POSTGRES_CAPTURE_FUNCTION_V2,
        triggers.POSTGRES_SETTLE_FUNCTION_V1,
    ):
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in (
        "DROP FUNCTION IF EXISTS audit_rowchange_settle(bigint[], bigint[])",
        triggers.POSTGRES_CAPTURE_FUNCTION_SKIPPABLE,
        "ALTER TABLE audit_rowchange ALTER COLUMN db_user DROP DEFAULT",
        "ALTER TABLE audit_rowchange ALTER COLUMN transaction_id DROP DEFAULT",
        "ALTER TABLE audit_rowchange ALTER COLUMN occurred_at DROP DEFAULT",
        GUARD_BEFORE,
        "DROP INDEX IF EXISTS audit_event_transaction",
        "ALTER TABLE audit_auditevent DROP COLUMN IF EXISTS transaction_id",
    ):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0007_evidence_orders")]

    operations = [
        migrations.AddField(
            model_name="rowchange",
            name="event",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=models.deletion.DO_NOTHING,
                related_name="+",
                to="audit.auditevent",
            ),
        ),
        migrations.AddIndex(
            model_name="rowchange",
            index=models.Index(
                condition=models.Q(("event__isnull", True)), fields=["id"], name="audit_rowchange_pending"
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
