"""The backstop on the AI tables: every write of an AI call and of a workspace's AI limits is
captured (each is named by its own ledger event: ``ai.decision``, ``ai.controls_changed``), and a
human task's review and override — ciphertext, re-encrypted by a data key's rotation — are left
out of its capture, as a step run's inputs and outputs are."""

from django.db import migrations

from audit import triggers

HUMAN_TASK = "workflows_humantask"


def hide_review(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(triggers.drop_capture_triggers_sql(HUMAN_TASK), params=None)
        schema_editor.execute(
            triggers.capture_triggers_sql(HUMAN_TASK, "id", ("review", "override")), params=None
        )


def show_review(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(triggers.drop_capture_triggers_sql(HUMAN_TASK), params=None)
        schema_editor.execute(triggers.capture_triggers_sql(HUMAN_TASK, "id", ()), params=None)


class Migration(migrations.Migration):
    dependencies = [("workflows", "0014_ai_register"), ("audit", "0009_backstop_by_content")]

    operations = [
        migrations.RunPython(hide_review, show_review),
        triggers.capture_operation(("workflows_aicall", "id", ()), ("workflows_aicontrols", "id", ())),
    ]
