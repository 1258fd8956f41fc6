"""The Celery app of the worker processes started by ``test_execution_faults`` and
``bench/executions.py``.

It is the portal's own app and tasks, on the test settings, database and broker that the
starter passes in the environment (``TEST_CELERY_BROKER_URL``, ``DATABASE_URL``,
``EXECUTION_LEASE_SECONDS``, …). The broker keeps its default visibility timeout, so a message
held by a killed worker is not delivered again within the test: the engine's sweep must do it.
With ``EXECUTION_TEST_CA_FILE`` set, ``http_request`` steps trust that certificate authority
(the test's local TLS server), and with ``EXECUTION_TEST_KEY_FILE`` they read the starter's
key-encryption keys (``EXECUTION_TEST_KEY_CACHE_SECONDS``: and cache data keys that long;
``EXECUTION_TEST_CONN_MAX_AGE``: and keep their database connections that long); nothing else
changes.
"""

from __future__ import annotations

import os
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.test")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connections, transaction  # noqa: E402

from governance.celery import app  # noqa: E402
from workflows.executions.steps import http_request  # noqa: E402
from workflows.integrations.outbound.client import IntegrationClient  # noqa: E402

app.conf.update(task_always_eager=False, result_backend=None)
# The starter's key file (each test has its own): the workers decrypt what the starter encrypted.
if os.environ.get("EXECUTION_TEST_KEY_FILE"):
    settings.CRYPTO_LOCAL_KEY_FILE = os.environ["EXECUTION_TEST_KEY_FILE"]
# The test profile caches no data key (one process, rotations tested without waiting); the
# benchmark's workers keep them as production does.
if os.environ.get("EXECUTION_TEST_KEY_CACHE_SECONDS"):
    settings.CRYPTO_KEY_CACHE_SECONDS = int(os.environ["EXECUTION_TEST_KEY_CACHE_SECONDS"])
# Persistent database connections, as production workers keep with DATABASE_CONN_MAX_AGE (the test
# profile closes the connection after every task, and Celery's Django fixup honours that).
if os.environ.get("EXECUTION_TEST_CONN_MAX_AGE"):
    for _alias in settings.DATABASES:
        connections[_alias].settings_dict["CONN_MAX_AGE"] = int(os.environ["EXECUTION_TEST_CONN_MAX_AGE"])

_ca_file = os.environ.get("EXECUTION_TEST_CA_FILE")
if _ca_file:
    _cadata = Path(_ca_file).read_text()

    def _client_for(integration) -> IntegrationClient:
        return IntegrationClient.for_integration(
            integration, cadata=_cadata, timeout=settings.EXECUTION_HTTP_TIMEOUT_SECONDS
        )

    http_request.client_for = _client_for


_redis = None


@app.task(name="tests.noop", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def noop(remaining: int, commits: int = 0) -> None:
    """A bare step: it sends the next one, as the engine sends a run's next step, and the last of a
    chain counts itself in the broker's Redis. The baseline the engine's throughput is compared with.
    With ``commits``, it first commits that many PostgreSQL transactions that each take a
    transaction id (so each commit is flushed to the WAL, as every commit of the engine is), and
    nothing else: the floor of any engine that keeps its truth in the database."""
    global _redis
    for _ in range(commits):
        with transaction.atomic(), connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()")
    if remaining > 1:
        noop.delay(remaining - 1, commits)
        return
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(app.conf.broker_url)
    _redis.incr("bench:chains-done")
