"""Project package of the governance portal.

Its Celery app (``governance.celery``, found by ``celery -A governance``) is not imported here, as
Celery's pattern for Django would have it: the task modules load it when they are imported (see
``governance.core.jobs``), so a command or a page that sends no task never pays for Celery."""
