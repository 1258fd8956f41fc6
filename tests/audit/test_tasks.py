"""The sealer as a Celery task, executed by a real worker over Redis."""

from __future__ import annotations

import socket
import time

import pytest
from django.db import transaction

from audit.models import AuditEvent, SignedTreeHead
from audit.services import audit_event_record


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379 (apt-get install redis-server)")
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_seals_and_signs():
    from celery.contrib.testing.worker import start_worker

    from audit.tasks import ledger_seal
    from governance.celery import app

    for index in range(5):
        with transaction.atomic():
            audit_event_record(action="workspace.updated", actor=None, data={"n": index})

    app.conf.update(task_always_eager=False, result_backend=None)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            ledger_seal.delay()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and AuditEvent.objects.filter(sequence__isnull=True).exists():
                time.sleep(0.2)
    finally:
        app.conf.update(task_always_eager=True)
    assert not AuditEvent.objects.filter(sequence__isnull=True).exists()
    assert SignedTreeHead.objects.get().tree_size == 5
