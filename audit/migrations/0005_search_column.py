"""Full-text search from a tsvector column filled once, at insert (PostgreSQL).

The expression index recomputed to_tsvector for every new row version, so each sealing UPDATE
paid for it again; a column set by a BEFORE INSERT trigger is computed once. The append-only
guard is recreated so that the sealing step cannot change this column either.
"""

from django.db import migrations

from audit import triggers

SEARCH_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_event_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := to_tsvector('simple'::regconfig,
        NEW.action || ' ' || NEW.target_label || ' ' || NEW.actor_label || ' ' || (NEW.data)::text);
    RETURN NEW;
END $$;
CREATE TRIGGER audit_event_search BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_search_document();
"""

GUARD = f"""
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
        "ALTER TABLE audit_auditevent ADD COLUMN search tsvector",
        SEARCH_FUNCTION,
        # Existing rows get their document once; the guard is paused for this one statement.
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_immutable",
        "UPDATE audit_auditevent SET search = to_tsvector('simple'::regconfig, action || ' ' || target_label"
        " || ' ' || actor_label || ' ' || (data)::text)",
        "ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_immutable",
        "DROP INDEX IF EXISTS audit_event_search",
        "CREATE INDEX audit_event_search ON audit_auditevent USING gin (search)",
        GUARD,
    ):
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in (
        "DROP TRIGGER IF EXISTS audit_event_search ON audit_auditevent",
        "DROP FUNCTION IF EXISTS audit_event_search_document()",
        "DROP INDEX IF EXISTS audit_event_search",
        "ALTER TABLE audit_auditevent DROP COLUMN IF EXISTS search",
    ):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_lean_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
