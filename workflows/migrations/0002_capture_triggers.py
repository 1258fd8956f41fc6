"""The ledger's completeness backstop on the workflow tables, and immutable versions (PostgreSQL)."""

from django.db import migrations

from audit import triggers

TABLES = (
    ("workflows_workflow", "id", ()),
    ("workflows_workflowversion", "id", ()),
    ("workflows_changerequest", "id", ()),
    ("workflows_approval", "id", ()),
    ("workflows_integration", "id", ()),
)


IMMUTABLE_VERSIONS = """
CREATE OR REPLACE FUNCTION workflows_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'workflow versions are immutable: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER workflows_version_immutable BEFORE UPDATE OR DELETE ON workflows_workflowversion
    FOR EACH ROW EXECUTE FUNCTION workflows_version_guard();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(IMMUTABLE_VERSIONS, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP TRIGGER IF EXISTS workflows_version_immutable ON workflows_workflowversion; "
            "DROP FUNCTION IF EXISTS workflows_version_guard();",
            params=None,
        )


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_initial"), ("audit", "0002_ledger_triggers")]

    operations = [triggers.capture_operation(*TABLES), migrations.RunPython(install, uninstall)]
