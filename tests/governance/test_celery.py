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
