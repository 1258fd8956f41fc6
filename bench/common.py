"""Shared helpers of the ledger benchmarks: database setup, a fast event generator, statistics, output.

Every script runs against its own database (``bench_ledger`` by default, never the test or
development one), creates it when missing, migrates it and starts from a state it resets itself.
Scripts live in bench/ and are run as ``python bench/<name>.py``; they put the repository root on
``sys.path`` before importing this module.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import multiprocessing
import os
import resource
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from audit.canonical import CONTENT_COLUMNS

DB_NAME = "bench_ledger"
# The PostgreSQL server the benchmark databases live on ($BENCH_SERVER_URL, e.g. the test suite's).
SERVER_URL = os.environ.get("BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
SETTINGS_MODULE = "governance.settings.test"
# Set by ``parse_arguments`` for a ``--smoke`` run.
SMOKE = False

# The columns the generator writes: the canonical document's columns, then the canonical bytes.
EVENT_COLUMNS = (*CONTENT_COLUMNS, "canonical")

GENERATOR_CHUNK = 10_000


# --- database and Django ------------------------------------------------------------------------


def parse_arguments(parser: argparse.ArgumentParser, *, smoke: dict[str, object]) -> argparse.Namespace:
    """Parse the command line with a ``--smoke`` option: tiny sizes (``smoke``: option name to
    value) that make the script finish in seconds. A smoke run proves that the script still
    works against the current code; its figures mean nothing. ``make test`` runs every script so
    (tests/governance/test_benches.py)."""
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, seconds: checks that the script runs (its figures mean nothing)",
    )
    options = parser.parse_args()
    global SMOKE
    SMOKE = options.smoke
    if options.smoke:
        for name, value in smoke.items():
            setattr(options, name, value)
        print(f"smoke run: {', '.join(f'{name}={value}' for name, value in smoke.items())}")
    return options


def add_database_arguments(parser: argparse.ArgumentParser, default: str = DB_NAME) -> None:
    """``--database`` and ``--fresh``, common to every script."""
    parser.add_argument(
        "--database", default=default, help=f"benchmark database name (default {default}; created if missing)"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="drop and recreate the benchmark database first (then migrate)"
    )


def ensure_database(name: str, *, fresh: bool = False) -> None:
    """Create database ``name`` on the local server if it is missing (drop it first when ``fresh``)."""
    if name in {"postgres", "template0", "template1"}:
        raise SystemExit(f"Refusing to use the {name!r} database for benchmarks.")
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
        if fresh:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(name: str = DB_NAME, *, fresh: bool = False, migrate: bool = True) -> None:
    """Point Django's test profile at the benchmark database, set it up and (by default) migrate."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ["DATABASE_URL"] = f"{SERVER_URL}/{name}"
    if migrate:
        ensure_database(name, fresh=fresh)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def raw_connection() -> psycopg.Connection:
    """The psycopg connection under Django's default connection (for COPY)."""
    from django.db import connection

    connection.ensure_connection()
    return connection.connection


def close_connections() -> None:
    """Close Django's connections, e.g. before forking processes that open their own."""
    from django.db import connections

    connections.close_all()


def backend_pid() -> int:
    """The process id of the database backend serving Django's connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by the local PostgreSQL backend ``pid`` (from /proc; 0 if unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_cpu() -> float:
    """CPU seconds used so far by this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def execute(*statements: str) -> None:
    """Run SQL statements on Django's connection, in autocommit mode unless in a transaction."""
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def ledger_tables() -> list[str]:
    """Every table of the audit app (events, heads, state, row-change queue, tiles, ...)."""
    from django.apps import apps

    return [model._meta.db_table for model in apps.get_app_config("audit").get_models()]


def reset_ledger() -> None:
    """Empty every audit table and restart their identities.

    As the owner: TRUNCATE is no trigger event, and only the application role's privileges forbid it.
    """
    execute(f"TRUNCATE {', '.join(ledger_tables())} RESTART IDENTITY")


def vacuum_analyze(*tables: str) -> None:
    """VACUUM ANALYZE ``tables`` so that every measured phase starts from settled tables."""
    execute(*(f"VACUUM ANALYZE {table}" for table in tables))


def settle(*tables: str) -> None:
    """VACUUM ANALYZE ``tables``, then CHECKPOINT: flush what setup (or an earlier script) left dirty,
    so that no background checkpoint and no burst of full-page WAL writes lands in a measurement."""
    vacuum_analyze(*tables)
    if not SMOKE:  # a smoke run measures nothing; a CHECKPOINT would flush the whole shared server
        execute("CHECKPOINT")


# --- the event generator ------------------------------------------------------------------------


def event_values(index: int, occurred_at: datetime) -> dict:
    """Column values of the ``index``-th generated event, shaped like a real ``workspace.updated``."""
    workspace = index % 50 + 1
    return {
        "uid": uuid.uuid4(),
        "occurred_at": occurred_at,
        "category": "admin",
        "action": "workspace.updated",
        "outcome": "success",
        "actor_type": "system",
        "actor_id": None,
        "actor_label": "system",
        "organization_id": 1,
        "workspace_id": workspace,
        "target_type": "tenancy.workspace",
        "target_id": str(workspace),
        "target_label": f"Workspace {workspace}",
        "request_id": uuid.uuid4().hex,
        "ip": f"10.0.{index // 250 % 250}.{index % 250 + 1}",
        "user_agent": "bench/1.0",
        "data": {"changes": {"name": {"after": f"Name {index}", "before": f"Name {index - 1}"}}, "n": index},
    }


def _copy_text(value: object) -> str:
    """One field in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        value = json.dumps(value, separators=(",", ":"))
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


ValuesFunction = Callable[[int, datetime], dict]

# With ``fast_canonical``, every FAST_CHECK_EVERY-th event is also encoded by the project's code.
FAST_CHECK_EVERY = 50


def fast_canonical_bytes(values: dict) -> bytes:
    """The canonical bytes by ``json.dumps`` (sorted keys, no spaces, UTF-8): for documents made of
    strings, integers, booleans and None only, this is byte for byte what RFC 8785 gives, about 10×
    faster than the ``rfc8785`` package. Not for floats (RFC 8785 spells numbers its own way)."""
    from audit.canonical import content_of

    document = content_of(values)
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _encode_chunk(task: tuple[int, int, float, float, ValuesFunction, bool]) -> bytes:
    """COPY text of events ``start``..``start + count - 1`` (canonical bytes by the project's code,
    or by ``fast_canonical_bytes`` checked against it on every FAST_CHECK_EVERY-th event)."""
    from audit.canonical import canonical_bytes

    start, count, first_timestamp, spacing, values_of, fast = task
    lines = []
    for index in range(start, start + count):
        moment = datetime.fromtimestamp(first_timestamp + index * spacing, UTC)
        values = values_of(index, moment)
        row = [values[column] for column in EVENT_COLUMNS[:-1]]
        encoded = fast_canonical_bytes(values) if fast else canonical_bytes(values)
        if fast and index % FAST_CHECK_EVERY == 0 and encoded != canonical_bytes(values):
            raise ValueError(f"fast_canonical_bytes differs from canonical_bytes for event {index}")
        row.append(encoded)
        lines.append("\t".join(_copy_text(value) for value in row))
    return ("\n".join(lines) + "\n").encode()


def _chunks(
    count: int, first_timestamp: float, spacing: float, values: ValuesFunction, fast: bool
) -> Iterator[tuple[int, int, float, float, ValuesFunction, bool]]:
    for start in range(0, count, GENERATOR_CHUNK):
        yield start, min(GENERATOR_CHUNK, count - start), first_timestamp, spacing, values, fast


def copy_events(
    count: int,
    *,
    spacing: float = 0.001,
    processes: int | None = None,
    values: ValuesFunction = event_values,
    fast_canonical: bool = False,
) -> float:
    """Insert ``count`` unsealed events with COPY; return the seconds it took.

    Event times run up to now, ``spacing`` seconds apart. ``values(index, occurred_at)`` gives the
    content columns of each event (``event_values`` by default); it is sent to the worker
    processes, so it must be picklable (a module-level function, or a ``functools.partial`` of one).
    The canonical bytes are computed by ``audit.canonical.canonical_bytes`` in a pool of processes
    while this one streams the COPY; with ``fast_canonical``, by ``fast_canonical_bytes``, checked
    against ``canonical_bytes`` on every FAST_CHECK_EVERY-th event (a difference stops the run).
    Must be called outside a transaction (Django's connections are closed before forking).
    """
    started = time.perf_counter()
    first_timestamp = time.time() - count * spacing
    close_connections()
    context = multiprocessing.get_context("fork")
    with context.Pool(processes or os.cpu_count() or 1) as pool:
        connection = raw_connection()
        columns = ", ".join(EVENT_COLUMNS)
        with connection.cursor() as cursor:
            # The generated mix holds db.row_changed events with no capture behind them, which the
            # database refuses outside a bench: its guard is off for this COPY only (same
            # transaction, as the owner of the bench's copy of the database).
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_row_changed")
            with cursor.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
                for block in pool.imap(
                    _encode_chunk, _chunks(count, first_timestamp, spacing, values, fast_canonical)
                ):
                    copy.write(block)
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_row_changed")
        connection.commit()
    return time.perf_counter() - started


# --- the request path ---------------------------------------------------------------------------


def append_event(writer: int, index: int) -> None:
    """What a request does: bind its context, record one event in its own transaction."""
    from django.db import transaction

    from audit.services import audit_event_record
    from governance.core.context import ActorContext, bind_context

    workspace = index % 50 + 1
    context = ActorContext(
        request_id=uuid.uuid4().hex, ip=f"10.1.{writer % 250}.{index % 250 + 1}", user_agent="bench/1.0"
    )
    with bind_context(context), transaction.atomic():
        audit_event_record(
            action="workspace.updated",
            actor=None,
            organization_id=1,
            workspace_id=workspace,
            data={"changes": {"name": {"after": f"Name {index}", "before": f"Name {index - 1}"}}, "n": index},
        )


def pass_mfa(client, user) -> None:
    """Verify the bench session with a TOTP device, as a correct code does (django-otp's session
    login), and note it on the session's record."""
    from django.http import HttpRequest
    from django.utils import timezone
    from django_otp import login as otp_login
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import UserSession
    from accounts.sessions import session_ref_of

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="Bench app", confirmed=True
    )
    request = HttpRequest()
    request.session = client.session
    request.user = user
    otp_login(request, device)
    request.session.save()
    UserSession.objects.filter(session_ref=session_ref_of(request.session.session_key)).update(
        mfa_verified_at=timezone.now()
    )


# --- statistics and output ----------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of ``values``; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass(frozen=True)
class Latency:
    """p50, p99 and max of a list of durations, in milliseconds."""

    p50: float
    p99: float
    max: float

    @classmethod
    def of_seconds(cls, durations: Sequence[float]) -> Latency:
        ordered = sorted(durations)
        return cls(
            percentile(ordered, 0.50) * 1000,
            percentile(ordered, 0.99) * 1000,
            (ordered or [math.nan])[-1] * 1000,
        )

    def __str__(self) -> str:
        return f"p50 {self.p50:.2f} ms  p99 {self.p99:.2f} ms  max {self.max:.2f} ms"


# Every figure printed by ``show``, with its section: written as JSON to $BENCH_RESULTS at exit
# (bench/report.py reads it to write docs/benchmarks.md).
_section = ""
RESULTS: list[dict] = []


def _write_results() -> None:
    path = os.environ.get("BENCH_RESULTS")
    if path:
        Path(path).write_text(json.dumps(RESULTS, indent=1, ensure_ascii=False) + "\n")


atexit.register(_write_results)


def title(text: str) -> None:
    """A section heading."""
    global _section
    _section = text
    print(f"\n== {text}")


def show(label: str, value: str, target: str = "", ok: bool | None = None) -> None:
    """One figure: label, value, and the target with PASS/MISS when there is one."""
    verdict = "" if ok is None else ("PASS" if ok else "MISS")
    RESULTS.append(
        {"section": _section, "label": label, "value": value, "target": target, "verdict": verdict}
    )
    print(f"  {label:<44} {value:<34} {target:<14} {verdict}".rstrip())


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s ({count:,} in {seconds:.2f} s)"


# --- sealed ledger checks -----------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerCheck:
    """What a sealed ledger looks like: sequence coverage, verification and the roots that must agree."""

    events: int
    unsealed: int
    gaps: int
    duplicates: int
    verified_ok: bool
    problems: list
    roots_agree: bool
    heads: int

    @property
    def ok(self) -> bool:
        return not (self.unsealed or self.gaps or self.duplicates) and self.verified_ok and self.roots_agree


def check_ledger() -> LedgerCheck:
    """Count gaps and duplicate sequences, verify, and compare the verified root with head and state."""
    from django.db import connection

    from audit import merkle
    from audit.ledger_verification import ledger_verify
    from audit.models import LedgerState, SignedTreeHead

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(sequence), count(DISTINCT sequence), coalesce(max(sequence), 0) "
            "FROM audit_auditevent"
        )
        total, sealed, distinct, highest = cursor.fetchone()
    report = ledger_verify()
    head = SignedTreeHead.objects.order_by("-number").first()
    state = LedgerState.objects.filter(pk=1).first()
    state_root = merkle.Frontier.from_json(state.frontier).root() if state and state.frontier else None
    roots_agree = (
        head is not None
        and head.tree_size == report.events == sealed
        and bytes(head.root_hash) == report.root == state_root
    )
    return LedgerCheck(
        events=total,
        unsealed=total - sealed,
        gaps=highest - distinct,
        duplicates=sealed - distinct,
        verified_ok=report.ok,
        problems=[problem.reason for problem in report.problems[:3]],
        roots_agree=roots_agree,
        heads=report.heads,
    )


def show_ledger_check(check: LedgerCheck) -> None:
    """Print a ``check_ledger`` result as figures with PASS/MISS."""
    show("events in the ledger", f"{check.events:,} ({check.heads} signed heads)")
    show("unsealed after sealing", f"{check.unsealed:,}", "= 0", check.unsealed == 0)
    show("gaps in sequence 1..N", f"{check.gaps:,}", "= 0", check.gaps == 0)
    show("duplicate sequences", f"{check.duplicates:,}", "= 0", check.duplicates == 0)
    show(
        "ledger_verify()", "ok" if check.verified_ok else f"FAILED {check.problems}", "ok", check.verified_ok
    )
    show(
        "one tree: verified root = last head = state",
        "yes" if check.roots_agree else "no",
        "yes",
        check.roots_agree,
    )
