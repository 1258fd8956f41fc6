"""The backstop can no longer be talked round (PostgreSQL).

- A ``db.row_changed`` event is accepted only when it says exactly what its capture says (the
  database compares the event's columns and canonical document with the capture), once per
  capture; the settle function also compares before/after when linking one.
- ``data.covers`` links a capture only for the tables its action's own service writes
  (``triggers.COVERING_ACTIONS``), so an event cannot vouch for a raw write elsewhere.
- Secret columns (``!name`` in a capture trigger's arguments) are captured as changed or not,
  never by value; a person's password hash is one: a raw write of it is no longer invisible.
"""

from django.db import migrations

from audit import triggers

USER_COLUMNS = ("!password", "last_login")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in (
        triggers.POSTGRES_CAPTURE_FUNCTION,
        triggers.POSTGRES_SETTLE_FUNCTION,
        triggers.POSTGRES_ROW_CHANGED_GUARD,
        triggers.drop_capture_triggers_sql("accounts_user"),
        triggers.capture_triggers_sql("accounts_user", "id", USER_COLUMNS),
    ):
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in (
        triggers.drop_capture_triggers_sql("accounts_user"),
        triggers.capture_triggers_sql("accounts_user", "id", ("password", "last_login")),
        triggers.POSTGRES_ROW_CHANGED_GUARD_REVERSE,
        triggers.POSTGRES_SETTLE_FUNCTION_V1,
        triggers.POSTGRES_CAPTURE_FUNCTION_V2,
        "DROP FUNCTION IF EXISTS audit_capture_mask(jsonb, text[], jsonb)",
    ):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_capture_backstop"),
        ("accounts", "0009_user_deactivated_by_provider_allowed_domains"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
