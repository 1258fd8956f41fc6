"""Benches that cannot rot: every script in bench/ runs in its ``--smoke`` mode (tiny sizes) against
a copy of the test database, and must finish and print its ratio figures.

Nothing here looks at a time: a smoke run's figures mean nothing. The full runs stay manual
(bench/README.md); ``bench/report.py`` writes their figures into docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.db import connections
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
BENCHES = sorted(
    path.name
    for path in (ROOT / "bench").glob("*.py")
    if path.name not in {"__init__.py", "common.py", "report.py"}
)
# Each smoke run is bounded: a script that hangs fails here instead of stalling the suite.
SMOKE_TIMEOUT = 300


def _admin_url() -> str:
    settings = connections["default"].settings_dict
    return f"postgresql://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/postgres"


def _clone(admin, source: str, target: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target)))
    admin.execute(
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(target), sql.Identifier(source))
    )


def _drop(admin, *names: str) -> None:
    for name in names:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def bench_database(django_db_setup, django_db_blocker):
    """A migrated database pair (main + secrets) copied from this worker's test databases, with
    the roles and shipped policies that migrations create (a flushing test may have removed them).
    The scripts share it, as they share ``bench_ledger`` by hand: each empties what it uses."""
    with django_db_blocker.unblock():
        sources = (connections["default"].settings_dict["NAME"], connections["secrets"].settings_dict["NAME"])
        connections.close_all()
    database = f"{sources[0]}_bench"
    names = (database, f"{database}_secrets")
    with psycopg.connect(_admin_url(), autocommit=True) as admin:
        for source, target in zip(sources, names, strict=True):
            # Only this process uses its worker's test databases, and it has just closed them.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                "AND pid <> pg_backend_pid()",
                [source],
            )
            _clone(admin, source, target)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from tests.conftest import ensure_roles; ensure_roles()",
        ],
        cwd=ROOT,
        env=_environment(database),
        check=True,
        capture_output=True,
        timeout=SMOKE_TIMEOUT,
    )
    yield database
    with psycopg.connect(_admin_url(), autocommit=True) as admin:
        _drop(admin, *names)


def _environment(database: str, results: Path | None = None) -> dict[str, str]:
    settings = connections["default"].settings_dict
    server = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}"
    environment = dict(os.environ)
    environment.update(
        DJANGO_SETTINGS_MODULE="governance.settings.test",
        DATABASE_URL=f"{server}/{database}",
        SECRETS_DATABASE_URL=f"{server}/{database}_secrets",
        PYTHONPATH=str(ROOT),
        BENCH_SERVER_URL=server,
    )
    if results is not None:
        environment["BENCH_RESULTS"] = str(results)
    return environment


@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="the benches run on PostgreSQL")
# The marker makes pytest-django create this worker's test databases, which the template copies.
@pytest.mark.django_db(databases=["default", "secrets"])
@pytest.mark.parametrize("script", BENCHES)
def test_bench_runs_in_smoke_mode(script, bench_database, tmp_path):
    """GIVEN a bench script WHEN it runs with --smoke against a copy of the migrated test database
    THEN it exits 0 and prints (and records) its ratio figures."""
    results = tmp_path / "results.json"
    source = (ROOT / "bench" / script).read_text()
    arguments = [sys.executable, str(ROOT / "bench" / script), "--smoke"]
    if "add_database_arguments(" in source or "--database" in source:
        arguments += ["--database", bench_database]
    if "add_crypto_database_arguments(" in source:
        arguments += ["--secrets-database", f"{bench_database}_secrets"]
    run = subprocess.run(  # noqa: S603 - this interpreter, a script of this repository
        arguments,
        cwd=ROOT,
        env=_environment(bench_database, results),
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "smoke run:" in run.stdout, output[-4000:]
    assert re.search(r"^ +.*ratio", run.stdout, re.IGNORECASE | re.MULTILINE), run.stdout[-4000:]
    figures = json.loads(results.read_text())
    assert any("ratio" in f"{figure['label']} {figure['target']}".lower() for figure in figures), figures
