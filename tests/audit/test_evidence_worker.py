"""An evidence build survives its worker being killed: real worker processes over Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections

from audit.evidence import offline_verifier as verify
from audit.evidence.orders import evidence_order_create, evidence_path, utc_today
from audit.models import AuditEvent, EvidenceOrder
from audit.signing import load_signing_key, public_key_pem
from tests.conftest import build_world
from tests.factories import make_events

pytestmark = pytest.mark.django_db(databases=["default", "secrets"], transaction=True)

# Generous bounds on waiting for a worker to reach a state: they end a test that would hang,
# they do not measure anything (every wait is for a state the test then asserts).
PATIENCE = 120


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def _url(alias: str) -> str:
    db = connections[alias].settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _worker(evidence_dir: Path, *, hold_phase: str = "") -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "governance.settings.test",
        "DATABASE_URL": _url("default"),
        "SECRETS_DATABASE_URL": _url("secrets"),
        "PORTAL_EVIDENCE_DIR": str(evidence_dir),
        "TEST_CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "EVIDENCE_TEST_HOLD_PHASE": hold_phase,
    }
    command = [sys.executable, "-m", "celery", "-A", "tests.audit.evidence_worker_app", "worker", "--pool=solo",
               "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel=WARNING"]  # fmt: skip
    return subprocess.Popen(command, cwd=django_settings.BASE_DIR, env=env, start_new_session=True)  # noqa: S603


def _wait_for(condition, what: str, worker: subprocess.Popen) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert worker.poll() is None, f"the worker exited ({worker.returncode}) before {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def _build_lock_held(order_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s "
                       "AND classid = %s", [order_id, 0x657669])  # fmt: skip
        return cursor.fetchone()[0] > 0


def _stop(worker: subprocess.Popen | None) -> None:
    if worker is not None and worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379 (apt-get install redis-server)")
def test_a_worker_killed_mid_build_is_replaced_and_the_package_is_complete(settings, tmp_path):
    """GIVEN an order whose build has started on a worker (events written, the partial ZIP on disk)
    WHEN that worker is killed with SIGKILL and another worker starts
    THEN the message is delivered again, the build starts over (attempt 2) and completes, the stale
    partial file is gone, and the package verifies with the stand-alone verifier."""
    import redis

    from governance.celery import app

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()  # the test's own Redis database
    evidence_dir = tmp_path / "evidence"
    settings.EVIDENCE_DIR = evidence_dir
    world = build_world()
    make_events(50, workspace=world.ws)
    first = second = None
    app.conf.update(task_always_eager=False)
    try:
        order = evidence_order_create(actor=world.users["auditor"], workspace=world.ws,
                                      period_start=utc_today(), period_end=utc_today())  # fmt: skip
        first = _worker(evidence_dir, hold_phase="proofs")
        _wait_for(lambda: EvidenceOrder.objects.filter(pk=order.pk, phase="proofs").exists(),
                  "the build to reach its proofs", first)  # fmt: skip
        partial = list(evidence_dir.glob(".*.partial-*"))
        assert len(partial) == 1
        assert not evidence_path(order).exists()

        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        # The database ends the killed worker's session, and with it the build lock.
        deadline = time.monotonic() + PATIENCE
        while _build_lock_held(order.pk):
            assert time.monotonic() < deadline, "the killed worker's build lock was never released"
            time.sleep(0.2)
        assert EvidenceOrder.objects.get(pk=order.pk).state == "building"

        second = _worker(evidence_dir)
        _wait_for(lambda: EvidenceOrder.objects.filter(pk=order.pk, state__in=["ready", "failed"]).exists(),
                  "the second worker to finish the build", second)  # fmt: skip
    finally:
        app.conf.update(task_always_eager=True)
        _stop(first)
        _stop(second)
        broker.flushdb()

    order.refresh_from_db()
    assert (order.state, order.attempts, order.error) == ("ready", 2, "")
    assert not partial[0].exists()
    assert list(evidence_dir.glob(".*")) == []
    path = evidence_path(order)
    report = verify.verify_package(
        str(path), public_key_pem=public_key_pem(load_signing_key().public_key()).encode()
    )
    assert report.ok, report.problems
    assert report.events == 50 + 1  # the events made, and the one of the test world's own workspace
    started = AuditEvent.objects.filter(action="evidence.order_started", target_id=str(order.pk)).order_by(
        "id"
    )
    assert [event.data["attempt"] for event in started] == [1, 2]
    assert AuditEvent.objects.filter(action="evidence.order_ready", target_id=str(order.pk)).count() == 1
