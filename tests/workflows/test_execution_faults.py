"""Executions survive faults: real worker processes over a real Redis and PostgreSQL.

Each test starts its own ``redis-server`` (no persistence, a free port: restarting it loses every
message, as a crash of a production broker without persistence would) and ``celery worker``
processes of ``tests.workflows.execution_worker_app`` on the test database. Steps that call out
reach a local TLS server in this process, which counts requests by ``Idempotency-Key`` and can
hold the first one until the test lets it go. This process plays the beat: it runs the engine's
sweep (``steps_due_dispatch``) about once a second while it waits.

Without ``redis-server`` they run through a TCP relay to the Redis of the settings' broker URL
(a database of their own), whose "restart" drops every connection and empties that database; with
neither they fail and say so: they are the engine's proof of its guarantees, and a skip would
hide their absence (``make test`` installs ``redis-server`` when it can).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connections

from audit.models import AuditEvent
from tests.workflows.test_executions import active_workflow
from tests.workflows.test_outbound import allow, pki  # noqa: F401 (fixture)
from workflows.executions import services
from workflows.executions.models import Execution, ExecutionStatus, StepRun, StepStatus
from workflows.executions.tasks import step_run_execute, steps_due_dispatch
from workflows.integrations.models import Integration

pytestmark = pytest.mark.django_db(databases=["default", "secrets"], transaction=True)

# Bounds on waiting for a state that the test then asserts: they end a test that would hang,
# they measure nothing.
PATIENCE = 60
REDIS_SERVER = shutil.which("redis-server")

CALL_THEN_TWO = {
    "trigger": {"type": "manual"},
    "steps": [
        {"id": "call", "type": "http_request", "integration": "crm", "method": "POST", "path": "/hold",
         "next": "double"},
        {"id": "double", "type": "transform", "expression": "input.amount * 2", "next": "label"},
        {"id": "label", "type": "transform", "expression": "{'amount': prev, 'status': steps.call.status}",
         "next": None},
    ],
}  # fmt: skip

from tests.workflows.test_executions import FIVE_TRANSFORMS  # noqa: E402


@pytest.fixture(autouse=True)
def _in_business_hours():
    """The real clock: this process runs the sweep, which compares leases the workers set with now
    (the staging workflows here are not bound to business hours)."""
    return


# --- the broker: a redis-server of the test's own --------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A ``redis-server`` without persistence on a free port; ``stop`` is a crash (SIGKILL)."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.directory)]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                if self.client().ping():
                    return
            except Exception:  # not listening yet
                assert self.process.poll() is None, "redis-server exited at start"
                assert time.monotonic() < deadline, "redis-server never answered"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def waiting(self) -> int:
        """Messages in the queue plus those delivered and not yet acknowledged."""
        client = self.client()
        return client.llen("celery") + client.hlen("unacked")


def _point_app_at(url: str | None, *, eager: bool) -> None:
    """Send this process's tasks to ``url`` (None: back to the settings). The app's pools are
    looked up again for the new URL; kombu keeps one per URL for the process, so none is closed
    here (a closed one would be handed back to the next test that publishes to that URL)."""
    from governance.celery import app

    app.conf.update(broker_url=url or django_settings.CELERY_BROKER_URL, task_always_eager=eager)
    app._pool = None
    app.amqp._producer_pool = None


class RedisRelay:
    """Where ``redis-server`` is not installed but a Redis answers (the test database of the
    settings' broker URL): a TCP relay to it on a free port, with the same controls. ``stop``
    drops every connection and refuses new ones; ``start`` after a stop empties the database
    first, as a restart without persistence does."""

    def __init__(self, upstream: str) -> None:
        import redis

        self.upstream = redis.Redis.from_url(upstream, socket_timeout=5)
        self.upstream_address = (self.upstream.connection_pool.connection_kwargs["host"],
                                 self.upstream.connection_pool.connection_kwargs["port"])  # fmt: skip
        self.db = self.upstream.connection_pool.connection_kwargs.get("db", 0)
        self.port = _free_port()
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []
        self.stopped = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self.db}"

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=self.db, socket_timeout=5)

    def start(self) -> None:
        if self.stopped:
            self.upstream.flushdb()
        self.stopped = False
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.upstream_address)
            self.sockets += [near, far]
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self.stopped = True
        if self.listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()
        self.sockets = []

    def waiting(self) -> int:
        return self.upstream.llen("celery") + self.upstream.hlen("unacked")


def _settings_redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(django_settings.CELERY_BROKER_URL, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def broker(tmp_path):
    """A redis-server of the test's own; without the binary, a relay to the Redis of the settings'
    broker URL (its own database number); without either, the test fails and says why."""
    if REDIS_SERVER is not None:
        server = RedisServer(tmp_path)
    elif _settings_redis_answers():
        server = RedisRelay(django_settings.CELERY_BROKER_URL)
        server.upstream.flushdb()
    else:
        pytest.fail(
            "The execution fault tests need Redis: redis-server on PATH (Debian: apt-get install "
            f"redis-server), or a Redis answering at {django_settings.CELERY_BROKER_URL}."
        )
    server.start()
    _point_app_at(server.url, eager=False)
    try:
        yield server
    finally:
        _point_app_at(None, eager=True)
        server.stop()
        if isinstance(server, RedisRelay):
            server.upstream.flushdb()


# --- the integration's endpoint: counts requests by idempotency key, can hold the first ------


class Endpoint:
    """What the TLS server saw: requests per Idempotency-Key; ``/hold`` holds the first of each
    key until ``release`` is set (``held`` is set when it arrives)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.held = threading.Event()
        self.release = threading.Event()


def _handler(endpoint: Endpoint):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            key = self.headers.get("Idempotency-Key", "")
            with endpoint.lock:
                endpoint.requests[key] += 1
                seen = endpoint.requests[key]
            if self.path == "/hold" and seen == 1:
                endpoint.held.set()
                endpoint.release.wait(PATIENCE)
            body = json.dumps({"key": key, "seen": seen}).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the caller was killed while we held its request

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture
def endpoint(shop, pki, tmp_path):  # noqa: F811 (fixture imported above)
    """The shop's CRM integration served by a local TLS server on the allow-list."""
    served = Endpoint()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    allow(shop, "127.0.0.1")
    Integration.objects.filter(workspace=shop.ws, slug="crm").update(
        endpoint_url=f"https://127.0.0.1:{httpd.server_address[1]}"
    )
    served.ca_file = tmp_path / "ca.pem"
    served.ca_file.write_text(pki.ca_pem if isinstance(pki.ca_pem, str) else pki.ca_pem.decode())
    try:
        yield served
    finally:
        served.release.set()
        httpd.shutdown()
        httpd.server_close()


# --- workers --------------------------------------------------------------------------------


def _url(alias: str) -> str:
    db = connections[alias].settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Workers:
    def __init__(self, broker: RedisServer, endpoint: Endpoint | None) -> None:
        self.broker, self.endpoint = broker, endpoint
        self.processes: list[subprocess.Popen] = []

    def start(self, *, lease: int = 30) -> subprocess.Popen:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "governance.settings.test",
            "DATABASE_URL": _url("default"),
            "SECRETS_DATABASE_URL": _url("secrets"),
            "TEST_CELERY_BROKER_URL": self.broker.url,
            "EXECUTION_LEASE_SECONDS": str(lease),
            "EXECUTION_TEST_KEY_FILE": django_settings.CRYPTO_LOCAL_KEY_FILE,
            "EXECUTION_TEST_CA_FILE": str(self.endpoint.ca_file) if self.endpoint else "",
        }
        command = [sys.executable, "-m", "celery", "-A", "tests.workflows.execution_worker_app", "worker",
                   "--pool=solo", "--without-heartbeat", "--without-mingle", "--without-gossip",
                   "--loglevel=ERROR"]  # fmt: skip
        process = subprocess.Popen(command, cwd=django_settings.BASE_DIR, env=env, start_new_session=True)  # noqa: S603
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self.processes.remove(process)

    def stop_all(self) -> None:
        for process in list(self.processes):
            if process.poll() is None:
                self.kill(process)

    def wait_for(self, condition, what: str, *, sweep: bool = True) -> None:
        """Wait until ``condition()``, running the sweep about once a second (as beat would)."""
        deadline = time.monotonic() + PATIENCE
        last_sweep = 0.0
        while not condition():
            for process in self.processes:
                assert process.poll() is None, f"a worker exited ({process.returncode}) before {what}"
            assert time.monotonic() < deadline, f"gave up waiting for {what}"
            if sweep and time.monotonic() - last_sweep >= 1:
                steps_due_dispatch()
                last_sweep = time.monotonic()
            time.sleep(0.1)


@pytest.fixture
def workers(broker, request):
    endpoint = request.getfixturevalue("endpoint") if "endpoint" in request.fixturenames else None
    started = Workers(broker, endpoint)
    try:
        yield started
    finally:
        started.stop_all()


# --- helpers --------------------------------------------------------------------------------


def _trigger(world, workflow, amount: int = 7) -> Execution:
    return services.execution_trigger(
        actor=world.users["workflow_operator"], workflow=workflow, input={"amount": amount}
    )


def _finished(*executions: Execution):
    ids = [execution.pk for execution in executions]
    return lambda: not Execution.objects.filter(pk__in=ids, finished_at__isnull=True).exists()


def _succeeded_per_step(execution: Execution) -> Counter[str]:
    return Counter(
        AuditEvent.objects.filter(action="step.succeeded", data__execution=execution.pk).values_list(
            "data__step", flat=True
        )
    )


def _assert_completed_once_per_step(execution: Execution, steps: list[str]) -> None:
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert _succeeded_per_step(execution) == Counter(steps)
    runs = execution.step_runs.all()
    assert sorted(run.step_id for run in runs) == sorted(steps)  # one row per step: no retry, no copy
    assert {run.status for run in runs} == {StepStatus.SUCCEEDED}
    assert AuditEvent.objects.filter(action="execution.finished", target_id=str(execution.pk)).count() == 1


# --- the faults -----------------------------------------------------------------------------


def test_a_worker_killed_mid_step_is_replaced_and_the_step_runs_once_more(shop, endpoint, broker, workers):
    """GIVEN a worker in the middle of an http_request step (the endpoint holds the request), its claim leased for 3 s
    WHEN the worker is killed with SIGKILL and another worker starts
    THEN once the lease lapses the sweep sends the step again, it runs exactly once more (a second
    request with the same Idempotency-Key), the ledger has one step.succeeded per step, and the
    run completes."""
    workflow = active_workflow(shop, CALL_THEN_TWO, slug="killed")
    first = workers.start(lease=3)
    execution = _trigger(shop, workflow)
    workers.wait_for(endpoint.held.is_set, "the step's request to reach the endpoint", sweep=False)
    call = execution.step_runs.get(step_id="call")
    assert (call.status, call.deliveries) == (StepStatus.RUNNING, 1)

    workers.kill(first)
    workers.start()  # its own claims hold for 30 s: a slow machine cannot make it lapse
    workers.wait_for(_finished(execution), "the run to finish on the second worker")

    _assert_completed_once_per_step(execution, ["call", "double", "label"])
    key = f"{execution.pk}:call"
    assert endpoint.requests == Counter({key: 2})  # the killed attempt, and exactly one more
    call.refresh_from_db()
    assert call.deliveries == 2
    started = AuditEvent.objects.filter(action="step.started", target_id=str(call.pk)).order_by("id")
    assert [(e.data["delivery"], e.data["reclaimed"]) for e in started] == [(1, False), (2, True)]
    label = execution.step_runs.get(step_id="label")
    assert json.loads(label.outputs) == {"amount": 14, "status": 200}


def test_redis_restarted_mid_run_loses_nothing(shop, endpoint, broker, workers, settings):
    """GIVEN one run held in its first step and a second run whose first message waits in Redis
    WHEN Redis is killed and started again empty (no persistence)
    THEN the lost message is sent again by the sweep from PostgreSQL, the held step finishes and
    its successors are sent, and both runs complete with one step.succeeded per step."""
    settings.EXECUTION_REDISPATCH_SECONDS = 2  # this process runs the sweep
    held_flow = active_workflow(shop, CALL_THEN_TWO, slug="held")
    plain_flow = active_workflow(shop, FIVE_TRANSFORMS, slug="plain")
    workers.start()
    held = _trigger(shop, held_flow)
    workers.wait_for(endpoint.held.is_set, "the first run's request to reach the endpoint", sweep=False)
    queued = _trigger(shop, plain_flow)
    waiting = StepRun.objects.get(execution=queued)
    assert waiting.status == StepStatus.PENDING
    assert waiting.dispatched_at is not None  # its message is in Redis (the only worker is busy)
    assert broker.client().llen("celery") == 1

    broker.stop()
    broker.start()
    assert broker.waiting() == 0  # every message is gone
    endpoint.release.set()
    workers.wait_for(_finished(held, queued), "both runs to finish")

    _assert_completed_once_per_step(held, ["call", "double", "label"])
    _assert_completed_once_per_step(queued, ["t1", "t2", "t3", "t4", "t5"])
    assert endpoint.requests == Counter({f"{held.pk}:call": 1})
    assert json.loads(queued.step_runs.get(step_id="t5").outputs) == 12


def test_a_trigger_while_the_broker_is_down_is_kept_and_sent_when_it_is_back(shop, broker, workers):
    """GIVEN the broker is down WHEN an operator triggers a run THEN the trigger commits (the run
    queued, its first step pending and not sent) and the sweep cannot send it yet; WHEN the broker
    is back THEN the sweep sends it and the run completes."""
    workflow = active_workflow(shop, FIVE_TRANSFORMS, slug="offline")
    broker.stop()
    execution = _trigger(shop, workflow)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED
    first = StepRun.objects.get(execution=execution)
    assert (first.status, first.dispatched_at) == (StepStatus.PENDING, None)
    assert list(
        AuditEvent.objects.filter(category="execution").order_by("id").values_list("action", flat=True)
    ) == ["execution.triggered", "step.queued"]
    assert steps_due_dispatch() == 0  # still down: nothing sent, nothing marked
    first.refresh_from_db()
    assert first.dispatched_at is None

    broker.start()
    workers.start()
    workers.wait_for(_finished(execution), "the run to finish once the broker is back")
    first.refresh_from_db()
    assert first.dispatched_at is not None
    _assert_completed_once_per_step(execution, ["t1", "t2", "t3", "t4", "t5"])


def test_a_duplicated_delivery_has_no_second_effect(shop, endpoint, broker, workers):
    """GIVEN two workers WHEN the first step's message is delivered three times at once, and every
    step's message once more after the run completed THEN the endpoint got one request for the
    step's Idempotency-Key, each step started and succeeded once, and nothing else was recorded."""
    workflow = CALL_THEN_TWO | {
        "steps": [CALL_THEN_TWO["steps"][0] | {"path": "/effect"}, *CALL_THEN_TWO["steps"][1:]]
    }
    workflow = active_workflow(shop, workflow, slug="duplicated")
    for _ in range(2):
        workers.start()
    execution = _trigger(shop, workflow)
    first = StepRun.objects.get(execution=execution)
    for _ in range(2):  # two more copies of the message the trigger sent
        step_run_execute.delay(str(first.pk))
    workers.wait_for(_finished(execution), "the run to finish", sweep=False)
    workers.wait_for(lambda: broker.waiting() == 0, "the copies to be consumed", sweep=False)
    events = AuditEvent.objects.count()

    for run in execution.step_runs.all():
        step_run_execute.delay(str(run.pk))
    workers.wait_for(lambda: broker.waiting() == 0, "the late copies to be consumed", sweep=False)

    assert AuditEvent.objects.count() == events  # the late copies recorded nothing
    _assert_completed_once_per_step(execution, ["call", "double", "label"])
    assert endpoint.requests == Counter({f"{execution.pk}:call": 1})
    assert AuditEvent.objects.filter(action="step.started", data__execution=execution.pk).count() == 3
    assert set(execution.step_runs.values_list("deliveries", flat=True)) == {1}
