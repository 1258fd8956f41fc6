"""Background work: what the beat schedules, a worker knows."""

from __future__ import annotations

from django.conf import settings

from governance.celery import app


def test_every_beat_entry_names_a_task_that_a_worker_registers():
    """GIVEN Celery's autodiscovery of the apps' tasks modules, as a worker runs it
    WHEN the beat schedule is read
    THEN every entry names a registered task (a misspelt or moved task would never run)."""
    app.loader.import_default_modules()
    unknown = {
        key: entry["task"]
        for key, entry in settings.CELERY_BEAT_SCHEDULE.items()
        if entry["task"] not in app.tasks
    }
    assert unknown == {}


# Names that messages may already carry in a broker: a task moved to another module keeps its name.
PUBLISHED_TASK_NAMES = {
    "audit.tasks.ledger_seal",
    "audit.tasks.evidence_order_build",
    "audit.tasks.evidence_orders_expire",
    "access.notify_policy_change",
    "access.notify_oncall_override",
    "governance.crypto.tasks.rotation_job_run",
    "governance.crypto.tasks.rotation_jobs_resume",
    "workflows.tasks.credential_runbook_run",
    "workflows.tasks.credential_versions_expire_task",
    "workflows.service_accounts_sweep",
    "workflows.notify_change",
    "workflows.changes_apply_due",
    "workflows.notify_integration_request",
    "workflows.notify_service_account",
}


def test_tasks_keep_the_names_queued_messages_carry():
    """GIVEN a message queued before an upgrade WHEN a new worker takes it THEN its task still
    exists under that name (an unknown name is rejected and its work, e.g. a runbook, is lost)."""
    app.loader.import_default_modules()
    assert PUBLISHED_TASK_NAMES - set(app.tasks) == set()


def test_a_crontab_given_by_its_fields_in_settings_is_a_crontab_for_beat():
    """GIVEN the nightly service-account sweep written as crontab fields in settings (which do not
    import Celery) WHEN the app reads its beat schedule THEN beat gets a crontab at 03:17."""
    from celery.schedules import crontab

    entry = app.conf.beat_schedule["service-accounts-sweep"]
    assert entry["schedule"] == crontab(hour=3, minute=17)
    assert entry["task"] == "workflows.service_accounts_sweep"
