"""Append-only triggers on the ledger (PostgreSQL and SQLite) and the completeness backstop on
governed tables (PostgreSQL). The SQL lives in audit/triggers.py."""

from django.db import migrations

from audit import triggers


def install(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        schema_editor.execute(triggers.POSTGRES_IMMUTABILITY, params=None)
        schema_editor.execute(triggers.POSTGRES_CAPTURE_FUNCTION, params=None)
        for table, pk, hidden in triggers.GOVERNED_TABLES:
            schema_editor.execute(triggers.capture_triggers_sql(table, pk, hidden), params=None)
    elif connection.vendor == "sqlite":
        for statement in triggers.SQLITE_IMMUTABILITY:
            schema_editor.execute(statement, params=None)


def uninstall(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        for table, _, _ in triggers.GOVERNED_TABLES:
            schema_editor.execute(triggers.drop_capture_triggers_sql(table), params=None)
        schema_editor.execute("DROP FUNCTION IF EXISTS audit_capture_rows();", params=None)
        schema_editor.execute(triggers.POSTGRES_IMMUTABILITY_REVERSE, params=None)
    elif connection.vendor == "sqlite":
        for statement in triggers.SQLITE_IMMUTABILITY_REVERSE:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("accounts", "0002_initial"),
        ("tenancy", "0002_roles"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
