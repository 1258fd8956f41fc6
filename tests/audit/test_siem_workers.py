"""The pump's guarantees with real concurrency: two workers at once never send an event twice
nor skip one; a worker process killed (SIGKILL) mid-batch loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings as django_settings
from django.db import connections

from audit.siem import pump
from audit.siem.models import SinkCursor
from tests.audit import siem_contracts
from tests.audit.siem_contracts import Contract
from tests.audit.test_siem import TOKEN, loopback, make_sink, org_uids, receiver, record_events  # noqa: F401 (fixtures)
from tests.conftest import build_world
from tests.workflows.test_outbound import pki  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(databases=["default", "secrets"], transaction=True)
PATIENCE = 60  # ends a test that would hang; measures nothing


@pytest.fixture
def committed_world():
    return build_world()


def test_two_workers_at_once_send_each_event_exactly_once(committed_world, pki, loopback, receiver):  # noqa: F811
    """GIVEN a webhook receiver that keeps every copy (no deduplication) WHEN two workers pump the
    same sink at the same time, again and again THEN every event arrives exactly once."""
    world = committed_world
    contract = Contract(token=TOKEN)
    siem_contracts.webhook(receiver, contract)
    sink = make_sink(world, pki, receiver, "webhook", path="/hook", batch_size=20)
    record_events(world.org, 200)
    expected = set(org_uids(world.org))
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            deadline = time.monotonic() + PATIENCE
            while not expected <= set(contract.received) and time.monotonic() < deadline:
                pump.sink_pump(sink_id=sink.pk, worker=name, max_batches=2)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connections.close_all()  # this thread's connections (main and secrets store)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("worker-1", "worker-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE + 10)
    assert errors == []
    assert expected <= set(contract.received)
    assert max(contract.received.values()) == 1


def _url(alias: str) -> str:
    db = connections[alias].settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_a_worker_killed_mid_batch_loses_nothing(committed_world, pki, loopback, receiver):  # noqa: F811
    """GIVEN a worker process that sent half of its batch WHEN it is killed (SIGKILL) THEN the
    cursor has not moved; once its lease has expired the next pump sends from the cursor and
    every event is stored exactly once (``_bulk`` answers 409 for the copies)."""
    world = committed_world
    contract = Contract(token=TOKEN)
    siem_contracts.elastic(receiver, contract)
    sink = make_sink(world, pki, receiver, "elastic", batch_size=40)
    record_events(world.org, 100)
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "governance.settings.test",
        "DATABASE_URL": _url("default"),
        "SECRETS_DATABASE_URL": _url("secrets"),
        "OUTBOUND_ALLOW_LIST": "127.0.0.1",
        "SIEM_TEST_KEY_FILE": django_settings.CRYPTO_LOCAL_KEY_FILE,
    }
    worker = subprocess.Popen(  # noqa: S603 (this interpreter, a module of the test suite)
        [sys.executable, "-m", "tests.audit.siem_doomed_worker", str(sink.pk)],
        cwd=django_settings.BASE_DIR, env=environment, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        line = worker.stdout.readline()
        if line.strip() != "sent":
            worker.wait(PATIENCE)
            pytest.fail(line + worker.stdout.read())
        assert len(contract.stored) == 20
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    cursor = SinkCursor.objects.get(sink=sink)
    assert (cursor.position, cursor.lease_owner) == (0, "doomed")
    assert pump.sink_pump(sink_id=sink.pk).stopped == "busy"  # its lease still holds
    SinkCursor.objects.filter(sink=sink).update(lease_until=cursor.lease_until - django_settings_lease())
    for _ in range(10):
        if not pump.sink_pump(sink_id=sink.pk).batches:
            break
    assert set(org_uids(world.org)[:100]) <= set(contract.stored)
    assert max(contract.received.values()) == 2  # the 20 sent before the kill, sent again
    assert sum(1 for count in contract.received.values() if count == 2) == 20


def django_settings_lease():
    """The lease's length: moving ``lease_until`` back by it is the passing of that time."""
    from datetime import timedelta

    return timedelta(seconds=django_settings.SIEM_LEASE_SECONDS + 1)
