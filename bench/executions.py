"""The execution engine's cost: step throughput on real workers, and the overhead of one step.

Setup (not measured): the test profile with production's cache of unwrapped data keys (60 s);
the test world of the suite (one organisation, a workspace, its members); an active, approved
workflow of five ``transform`` steps; a ``redis-server`` of the script's own on a free port (no
persistence; without the binary, the test profile's Redis database); and two ``celery worker``
processes (``--pool=solo``: one process each) of ``tests.workflows.execution_worker_app`` on the
benchmark database, keeping their database connections as production workers should
(``--conn-max-age``, default 600 s).

(a) Throughput, in rounds of baseline, engine and context (B E C B E C ...):
    - baseline: N chains of five bare Celery tasks (``tests.noop``): each task sends the next, as
      the engine sends a run's next step, and the last one counts itself in Redis;
    - engine: N runs of the five-step workflow, triggered beforehand with their first message held
      back; the clock starts when the N first messages are sent and stops when every run has
      finished (PostgreSQL is polled every 20 ms; the baseline's Redis counter likewise).
    Steps per second of each; the ratio engine / baseline (target ≥ 0.5). For context, a third
    kind of round: the bare chains again, each task first committing three empty transactions that
    take a transaction id (durable commits, as many as the engine makes per step), so the figures
    show how much of the gap is PostgreSQL's commit itself.

(b) Per-step overhead, in this process with the workers stopped: for each step of M runs, the
    claim (lock, checks, lease, ledger events, commit) plus the finish (re-lock, encrypted
    output, ledger events, the next step's row, commit, and the publish of its message to Redis),
    without the step's own work (the CEL expression), p50/p99; next to a bare ``delay()`` of a
    no-op task to the same Redis. With it, the CPU per step of this process and of its database
    backend (``/proc``) over the whole loop: where a step's time goes when round trips are cheap.

    .venv/bin/python bench/executions.py [--runs 200] [--rounds 2] [--overhead-runs 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = "bench_executions"
ROOT = Path(__file__).resolve().parent.parent
STEPS = 5
TARGET_RATIO = 0.5
POLL = 0.02
# What the engine commits per step: the claim, the finish, and the mark that the next step's message
# went to the broker (autocommit). The context baseline commits as many empty transactions.
COMMITS_PER_STEP = 3
PATIENCE = 600  # bounds a wait that would hang; measures nothing
# The test profile caches no unwrapped data key; production keeps them 60 s (settings/base.py).
PRODUCTION_KEY_CACHE_SECONDS = 60

FIVE_TRANSFORMS = {
    "trigger": {"type": "manual"},
    "steps": [
        {"id": f"t{n}", "type": "transform", "expression": f"input.amount + {n}", "next": f"t{n + 1}" if n < 5 else None}
        for n in range(1, STEPS + 1)
    ],
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- setup --------------------------------------------------------------------------------------


def build(database: str):
    """A fresh test world and the five-step workflow, active and approved; (operator, workflow)."""
    from tests.conftest import build_world, member
    from tests.factories import UserFactory
    from tests.workflows.test_executions import active_workflow

    common.execute("TRUNCATE tenancy_organization, accounts_user RESTART IDENTITY CASCADE")
    common.reset_ledger()
    world = build_world()
    for code in ("workflow_builder", "workspace_owner", "compliance_officer", "workflow_operator"):
        world.users[code].region = "EU"
        world.users[code].save(update_fields=["region"])
    builder = world.users["workflow_builder"]
    builder.manager = world.users["workspace_owner"]
    builder.save(update_fields=["manager"])
    world.second_officer = UserFactory(organization=world.org, email="officer2@acme.test", region="EU")
    member(world.second_officer, "compliance_officer", world.ws)
    return world.users["workflow_operator"], active_workflow(world, FIVE_TRANSFORMS, slug="bench-five")


class Redis:
    """A redis-server of the script's own on a free port; without the binary, the database of the
    test profile's broker URL (emptied before and after), said in the output."""

    def __init__(self, directory: Path) -> None:
        import redis

        binary = shutil.which("redis-server")
        self.process = None
        if binary is None:
            from django.conf import settings

            self.url = settings.CELERY_BROKER_URL
            self.client = redis.Redis.from_url(self.url)
            try:
                self.client.flushdb()
            except redis.RedisError:
                raise SystemExit(
                    f"bench/executions.py needs redis-server (Debian: apt-get install redis-server) or a "
                    f"Redis at {self.url}."
                ) from None
            print(f"redis-server is not installed: using {self.url}")
            return
        port = free_port()
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            self.client.flushdb()
            return
        self.process.terminate()
        self.process.wait(timeout=30)


def start_workers(redis: Redis, database: str, count: int, conn_max_age: int) -> list[subprocess.Popen]:
    from django.conf import settings

    from governance.celery import app

    environment = dict(os.environ)
    environment.update(
        DJANGO_SETTINGS_MODULE="governance.settings.test",
        DATABASE_URL=f"{common.SERVER_URL}/{database}",
        SECRETS_DATABASE_URL=f"{common.SERVER_URL}/{settings.DATABASES['secrets']['NAME']}",
        TEST_CELERY_BROKER_URL=redis.url,
        EXECUTION_TEST_KEY_FILE=str(settings.CRYPTO_LOCAL_KEY_FILE),
        EXECUTION_TEST_KEY_CACHE_SECONDS=str(PRODUCTION_KEY_CACHE_SECONDS),
        EXECUTION_TEST_CONN_MAX_AGE=str(conn_max_age),
    )
    environment.pop("BENCH_RESULTS", None)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.workflows.execution_worker_app",
                "worker",
                "--pool=solo",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=ERROR",
                "-n",
                f"bench{number}@%h",
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        for number in range(count)
    ]
    deadline = time.monotonic() + 300
    while len(app.control.ping(timeout=0.5) or []) < count:
        if any(worker.poll() is not None for worker in workers) or time.monotonic() > deadline:
            stop_workers(workers)
            raise SystemExit("the workers did not start")
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.wait(timeout=60)


def point_app_at(url: str) -> None:
    from governance.celery import app

    app.conf.update(broker_url=url, task_always_eager=False, result_backend=None)
    app._pool = None
    app.amqp._producer_pool = None


def wait(condition, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(POLL)


# --- (a) throughput -----------------------------------------------------------------------------


def bare_round(redis: Redis, chains: int, commits: int = 0) -> float:
    """Seconds for ``chains`` chains of five no-op tasks on the workers (each committing ``commits``
    empty, durable transactions first)."""
    from tests.workflows.execution_worker_app import noop

    redis.client.delete("bench:chains-done")
    started = time.perf_counter()
    for _ in range(chains):
        noop.delay(STEPS, commits)
    wait(lambda: int(redis.client.get("bench:chains-done") or 0) >= chains, "the bare chains")
    return time.perf_counter() - started


def trigger_held(operator, workflow, runs: int) -> list:
    """``runs`` executions, triggered as an operator would, with their first message held back."""
    from workflows.executions import services

    with mock.patch.object(services, "_dispatch", return_value=None):
        return [
            services.execution_trigger(actor=operator, workflow=workflow, input={"amount": number})
            for number in range(runs)
        ]


def engine_round(operator, workflow, runs: int) -> float:
    """Seconds for ``runs`` five-step runs on the workers, from their first messages to the last finish."""
    from workflows.executions.models import Execution, ExecutionStatus, StepRun
    from workflows.executions.tasks import step_run_execute

    executions = trigger_held(operator, workflow, runs)
    ids = [execution.pk for execution in executions]
    firsts = [str(pk) for pk in StepRun.objects.filter(execution_id__in=ids).values_list("pk", flat=True)]
    finished = Execution.objects.filter(pk__in=ids, finished_at__isnull=False)
    started = time.perf_counter()
    for step_run_id in firsts:
        step_run_execute.delay(step_run_id)
    wait(lambda: finished.count() >= runs, "the runs")
    seconds = time.perf_counter() - started
    succeeded = Execution.objects.filter(pk__in=ids, status=ExecutionStatus.SUCCEEDED).count()
    if succeeded != runs:
        raise SystemExit(f"{runs - succeeded} of {runs} runs did not succeed")
    return seconds


def _rates(rates: list[float]) -> str:
    """The median rate, then each round's."""
    return f"{statistics.median(rates):,.0f} steps/s (rounds {' '.join(f'{rate:,.0f}' for rate in rates)})"


def throughput(redis: Redis, operator, workflow, runs: int, rounds: int) -> None:
    from audit.models import AuditEvent

    common.title(
        f"(a) Step throughput, 2 worker processes: {runs} runs of {STEPS} steps per round, {rounds} rounds"
    )
    bare: list[float] = []
    durable: list[float] = []
    engine: list[float] = []
    before = AuditEvent.objects.filter(action="step.succeeded").count()
    bare_round(redis, 2)  # warm-up: the workers' first tasks (imports, connections)
    engine_round(operator, workflow, 2)
    for _ in range(rounds):
        bare.append(bare_round(redis, runs))
        engine.append(engine_round(operator, workflow, runs))
        durable.append(bare_round(redis, runs, commits=COMMITS_PER_STEP))
    steps = runs * STEPS
    bare_rate = [steps / seconds for seconds in bare]
    engine_rate = [steps / seconds for seconds in engine]
    common.show("baseline: bare Celery task per step", _rates(bare_rate))
    common.show("ours: engine steps (claim, run, finish)", _rates(engine_rate))
    durable_rate = [steps / seconds for seconds in durable]
    common.show(f"context: bare task + {COMMITS_PER_STEP} durable commits", _rates(durable_rate))
    pairs = [ours / base for ours, base in zip(engine_rate, bare_rate, strict=True)]
    common.show("ratio per round (spread = noise)", " ".join(f"{value:.2f}" for value in pairs))
    ratio = statistics.median(engine_rate) / statistics.median(bare_rate)
    common.show(
        "ratio engine / bare, median rates", f"{ratio:.2f}", f">= {TARGET_RATIO}", ratio >= TARGET_RATIO
    )
    recorded = AuditEvent.objects.filter(action="step.succeeded").count() - before
    expected = (rounds * runs + 2) * STEPS
    common.show("step.succeeded events = steps run", f"{recorded:,}", f"= {expected:,}", recorded == expected)


# --- (b) per-step overhead ----------------------------------------------------------------------


def overhead(redis: Redis, operator, workflow, runs: int) -> None:
    """Claim + finish (with the next step's publish) of every step of ``runs`` runs, in this process."""
    from tests.workflows.execution_worker_app import noop
    from workflows.executions import services
    from workflows.executions.models import StepRun, StepStatus
    from workflows.executions.steps import run_step

    common.title(f"(b) Per-step overhead in one process: {runs} runs of {STEPS} steps, workers stopped")
    executions = trigger_held(operator, workflow, runs)
    costs: list[float] = []
    backend = common.backend_pid()
    client_cpu, server_cpu = common.client_cpu(), common.server_cpu(backend)
    for execution in executions:
        for _ in range(STEPS):
            step_run_id = StepRun.objects.get(execution=execution, status=StepStatus.PENDING).pk
            started = time.perf_counter()
            claim = services.step_run_claim(step_run_id=step_run_id)
            claimed = time.perf_counter()
            outcome = run_step(claim.step, claim.context, claim.env)
            ran = time.perf_counter()
            services.step_run_finish(claim=claim, outcome=outcome)
            costs.append(claimed - started + time.perf_counter() - ran)
    # CPU of the whole loop (the pending-row lookup and the CEL expression included), per step.
    client_cpu = (common.client_cpu() - client_cpu) / len(costs)
    server_cpu = (common.server_cpu(backend) - server_cpu) / len(costs)
    publishes: list[float] = []
    for _ in range(len(costs)):
        started = time.perf_counter()
        noop.delay(1)
        publishes.append(time.perf_counter() - started)
    redis.client.flushdb()
    ours, base = common.Latency.of_seconds(costs), common.Latency.of_seconds(publishes)
    common.show("baseline: bare delay() of a no-op task", str(base))
    common.show("ours: claim + ledger + finish + publish", str(ours))
    common.show("ratio p50 ours / bare publish", f"{ours.p50 / base.p50:.1f}")
    common.show("ratio p99 ours / bare publish", f"{ours.p99 / base.p99:.1f}")
    common.show("ours: this process's CPU per step (whole loop)", f"{client_cpu * 1000:.2f} ms")
    common.show("ours: the database backend's CPU per step", f"{server_cpu * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="(a) runs per round (default 200)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="(a) rounds of baseline then engine (default 2)"
    )
    parser.add_argument(
        "--overhead-runs",
        type=int,
        default=100,
        help="(b) runs stepped through in this process (default 100)",
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=600,
        help="the workers' DATABASE_CONN_MAX_AGE in seconds (default 600; 0 = a new connection per task)",
    )
    common.add_database_arguments(parser, default=DB_NAME)
    options = common.parse_arguments(parser, smoke={"runs": 3, "rounds": 1, "overhead_runs": 2})
    common.ensure_database(f"{options.database}_secrets", fresh=options.fresh)
    common.setup_django(options.database, fresh=options.fresh)
    from django.core.management import call_command

    call_command("migrate", database="secrets", verbosity=0)
    from django.conf import settings

    settings.CRYPTO_KEY_CACHE_SECONDS = PRODUCTION_KEY_CACHE_SECONDS
    print(
        f"executions: {options.runs} runs per round, {options.rounds} rounds, workers' "
        f"DATABASE_CONN_MAX_AGE={options.conn_max_age}, database {options.database}"
    )
    common.title("Setup (not measured)")
    started = time.perf_counter()
    operator, workflow = build(options.database)
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        redis = Redis(Path(directory))
        try:
            point_app_at(redis.url)
            workers = start_workers(redis, options.database, 2, options.conn_max_age)
            common.show("world, workflow, redis-server, 2 workers", f"{time.perf_counter() - started:.1f} s")
            try:
                throughput(redis, operator, workflow, options.runs, options.rounds)
            finally:
                stop_workers(workers)
            overhead(redis, operator, workflow, options.overhead_runs)
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
