"""Project package of the governance portal."""

from governance.celery import app as celery_app

__all__ = ["celery_app"]
