"""The request path writes the search document in its own INSERT; the trigger now only fills it
for rows inserted otherwise (bulk paths), and its WHEN clause spares the common path the call."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS audit_event_search ON audit_auditevent", params=None)
    schema_editor.execute(
        "CREATE TRIGGER audit_event_search BEFORE INSERT ON audit_auditevent FOR EACH ROW "
        "WHEN (NEW.search IS NULL) EXECUTE FUNCTION audit_event_search_document()",
        params=None,
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS audit_event_search ON audit_auditevent", params=None)
    schema_editor.execute(
        "CREATE TRIGGER audit_event_search BEFORE INSERT ON audit_auditevent FOR EACH ROW "
        "EXECUTE FUNCTION audit_event_search_document()",
        params=None,
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_search_column")]

    operations = [migrations.RunPython(forwards, backwards)]
