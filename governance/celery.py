"""Celery application: broker from CELERY_BROKER_URL, configuration from Django settings."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.local")

app = Celery("governance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # each app's tasks module


@app.on_after_configure.connect
def _crontab_entries(sender, **kwargs) -> None:
    """Beat entries that settings give as ``{"crontab": {...}}`` become crontab schedules (the
    settings do not import Celery, so that a command that sends no task never loads it)."""
    from celery.schedules import crontab

    sender.conf.beat_schedule = {
        name: {**entry, "schedule": crontab(**entry["schedule"]["crontab"])}
        if isinstance(entry.get("schedule"), dict)
        else entry
        for name, entry in sender.conf.beat_schedule.items()
    }
