"""API throughput and sign-ins: what one server answers, to size a deployment.

- **API.** gunicorn serves the project with the production settings profile on 127.0.0.1;
  ``--clients`` concurrent clients (threads of this process) send ``GET /api/v1/workflows/`` (the
  list, first page) and ``GET /api/v1/workflows/<id>/`` (a detail) with an API token. Baseline:
  the same SQL statements that one request of each sends (captured from the application), replayed
  directly over ``--clients`` database connections, as many times.
- **Sign-ins.** ``authenticate()`` with the production profile's password hasher (the first of
  ``PASSWORD_HASHERS``), against that hasher's ``verify`` alone on the same encoded password.

The clients share the machine's two cores with the server and the database: the figures are for
one small host, read the ratios. Setup (not measured) reuses ``access_lists.populate``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = "bench_api"
ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(database: str, workers: int, port: int) -> subprocess.Popen:
    """gunicorn with the production profile (TLS terminated by a proxy, as deployed)."""
    from django.conf import settings

    environment = dict(os.environ)
    environment.update(
        DJANGO_SETTINGS_MODULE="governance.settings.production",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="127.0.0.1",
        BEHIND_TLS_PROXY="1",
        DATABASE_URL=f"{common.SERVER_URL}/{database}",
        SECRETS_DATABASE_URL=f"{common.SERVER_URL}/{settings.DATABASES['secrets']['NAME']}",
        LEDGER_SIGNING_KEY_FILE=str(settings.LEDGER_SIGNING_KEY_FILE),
        CRYPTO_LOCAL_KEY_FILE=str(settings.CRYPTO_LOCAL_KEY_FILE),
    )
    environment.pop("BENCH_RESULTS", None)
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "governance.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=environment,
    )
    deadline = time.monotonic() + 300  # 4 workers start Django each: slow on a loaded machine
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            status, _ = request(port, "/healthz", "")
            if status:
                return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit("gunicorn did not answer within 300 s")


def request(port: int, path: str, token: str) -> tuple[int, int]:
    """One GET (a new connection: gunicorn's sync workers close each); (status, body bytes)."""
    connection = HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Host": "127.0.0.1", "X-Forwarded-Proto": "https"}
    if token:
        headers["Authorization"] = f"Token {token}"
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, len(response.read())
    finally:
        connection.close()


def run_clients(clients: int, per_client: int, work) -> tuple[float, list[float], list]:
    """``clients`` threads each calling ``work(client, i)`` ``per_client`` times; wall seconds,
    latencies and the results."""
    latencies: list[float] = []
    results: list = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(number: int) -> None:
        barrier.wait()
        for index in range(per_client):
            started = time.perf_counter()
            result = work(number, index)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                results.append(result)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, results


def captured_statements(path: str, token: str) -> list[tuple[str, tuple]]:
    """The SQL statements (with parameters) one request of ``path`` sends, through the test client."""
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    statements: list[tuple[str, tuple]] = []

    def keep(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    client.get(path)  # warm-up: content types and other first-request reads
    with connection.execute_wrapper(keep):
        response = client.get(path)
    if response.status_code != 200:
        raise SystemExit(f"{path}: HTTP {response.status_code}")
    return [(sql, params) for sql, params in statements if sql.lstrip().upper().startswith("SELECT")]


def replay(database: str, statements: list[tuple[str, tuple]], clients: int, per_client: int):
    """The baseline: ``statements`` replayed over one psycopg connection per client."""
    import psycopg

    connections = [
        psycopg.connect(f"{common.SERVER_URL}/{database}", autocommit=True) for _ in range(clients)
    ]

    def work(client: int, _index: int) -> int:
        with connections[client].cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
                cursor.fetchall()
        return 200

    try:
        return run_clients(clients, per_client, work)
    finally:
        for connection in connections:
            connection.close()


def measure_api(options, facts: dict, port: int) -> None:
    from knox.models import AuthToken

    from workflows.changes.models import Workflow

    _, token = AuthToken.objects.create(user=facts["user"])
    detail_id = (
        Workflow.objects.filter(workspace_id=facts["workspaces"][0])
        .order_by("id")
        .values_list("id", flat=True)[0]
    )
    paths = {"list": "/api/v1/workflows/", "detail": f"/api/v1/workflows/{detail_id}/"}
    for name, path in paths.items():
        statements = captured_statements(path, token)
        common.title(f"API {name}: GET {path}, {options.clients} clients × {options.requests} requests")
        request(port, path, token)  # warm-up of a worker
        wall, latencies, results = run_clients(
            options.clients, options.requests, lambda _c, _i, path=path: request(port, path, token)
        )
        failed = [status for status, _ in results if status != 200]
        total = len(results)
        base_wall, base_latencies, _ = replay(options.database, statements, options.clients, options.requests)
        common.show(
            "ours: gunicorn, production settings",
            f"{total / wall:,.0f} requests/s ({total:,} in {wall:.2f} s)",
        )
        common.show("ours: latency", str(common.Latency.of_seconds(latencies)))
        common.show(
            f"baseline: the request's {len(statements)} SELECTs direct", f"{total / base_wall:,.0f} rounds/s"
        )
        common.show("baseline: latency", str(common.Latency.of_seconds(base_latencies)))
        common.show("ratio ours / baseline (throughput)", f"{base_wall / wall:.2f}")
        common.show("responses other than 200", f"{len(failed)}", "= 0", not failed)


def measure_sign_ins(options, facts: dict) -> None:
    """authenticate() with the production hasher against the hasher alone."""
    from django.contrib.auth import authenticate
    from django.contrib.auth.hashers import get_hasher, make_password
    from django.test import RequestFactory, override_settings

    from governance.settings import base

    hasher_path = base.PASSWORD_HASHERS[0]
    user = facts["user"]
    with override_settings(PASSWORD_HASHERS=base.PASSWORD_HASHERS):
        hasher = get_hasher("default")
        encoded = make_password(PASSWORD, hasher=hasher)
        type(user).objects.filter(pk=user.pk).update(password=encoded)
        request = RequestFactory().post("/accounts/login/", HTTP_HOST="127.0.0.1")
        count = options.sign_ins
        common.title(f"Sign-ins: {hasher_path.rsplit('.', 1)[-1]}, {count} in one process")
        assert authenticate(request, email=user.email, password=PASSWORD) is not None, (
            "the bench user signs in"
        )
        started = time.perf_counter()
        for _ in range(count):
            authenticate(request, email=user.email, password=PASSWORD)
        ours = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(count):
            hasher.verify(PASSWORD, encoded)
        alone = time.perf_counter() - started
    common.show("ours: authenticate()", common.rate(count, ours))
    common.show("baseline: the hasher's verify alone", common.rate(count, alone))
    common.show("ratio ours / baseline (throughput)", f"{alone / ours:.2f}")
    common.show("sign-ins per second, one process", f"{count / ours:,.1f}")


def main() -> None:
    from bench.access_lists import populate

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument(
        "--requests", type=int, default=100, help="requests per client and endpoint (default 100)"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (default 4)")
    parser.add_argument(
        "--workflows", type=int, default=100_000, help="workflows in the database (default 100000)"
    )
    parser.add_argument("--sign-ins", type=int, default=20, help="sign-ins to time (default 20)")
    common.add_database_arguments(parser, default=DB_NAME)
    options = common.parse_arguments(
        parser, smoke={"clients": 2, "requests": 3, "workers": 1, "workflows": 1_000, "sign_ins": 1}
    )
    common.ensure_database(f"{options.database}_secrets", fresh=options.fresh)
    common.setup_django(options.database, fresh=options.fresh)
    from django.core.management import call_command

    call_command("migrate", database="secrets", verbosity=0)
    print(
        f"api: {options.clients} clients, gunicorn with {options.workers} workers, "
        f"{options.workflows:,} workflows, database {options.database}"
    )
    common.title("Setup (not measured)")
    facts = populate(options.workflows, 100, 1_000, 50)
    from audit.signing import load_signing_key

    load_signing_key()  # the test profile creates the ledger's key file; production reads it
    port = free_port()
    server = start_server(options.database, options.workers, port)
    try:
        measure_api(options, facts, port)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    measure_sign_ins(options, facts)


if __name__ == "__main__":
    main()
