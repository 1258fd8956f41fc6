"""Background jobs: the decorator the apps' task modules use, bound to the project's Celery app.

Celery's pattern for Django imports the Celery app in the project package, so that shared tasks
bind to it; that costs every process a fifth of a second, commands that send nothing included.
Here the app named by the ``BACKGROUND_JOBS_APP`` setting (the top floor's, as ``ROOT_URLCONF``
names its URLs) is loaded when a task module is imported: a task is then always sent through the
project's app (its broker, its eager mode in tests), never through the default app Celery would
make up for a task sent before any app exists.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string


def shared_task(*args, **options):
    """``celery.shared_task``, after the project's Celery app is loaded (see the module's text)."""
    import_string(settings.BACKGROUND_JOBS_APP)
    from celery import shared_task as celery_shared_task

    return celery_shared_task(*args, **options)
