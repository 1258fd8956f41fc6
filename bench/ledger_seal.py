"""Sealing: throughput of ``ledger_seal_all`` and the seal lag under a steady append load.

(a) Throughput. N unsealed events are generated with COPY (canonical bytes by the project's own
code), then ``ledger_seal_all(sign=True)`` is timed. Baseline in the same run: reading the same
pending rows with the sealer's own query (``id, canonical ... WHERE sequence IS NULL ORDER BY id``,
batch by batch) and nothing else.

(b) Lag. One process appends events at a fixed rate (single-event transactions, as requests do)
while another runs the project's ``seal_loop`` (seal; sleep 1 s when nothing was sealed). Lag is
``sealed_at - occurred_at`` per event. Baseline in the same run: a third process that polls for
new rows the same way (query; sleep 1 s when nothing new) and does no work, so its lag is what the
polling design alone costs.

    .venv/bin/python bench/ledger_seal.py [--events 200000] [--rate 1000] [--duration 30] [--breakdown]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

TARGET_SEAL_RATE = 20_000
TARGET_LAG_P99 = 2.0  # seconds
SEAL_INTERVAL = 1.0  # seconds, as ``audit_seal --loop``
DRAIN = 4.0  # seconds the sealer and the poller go on after the appender stops
EVENT_TABLE = "audit_auditevent"
SIDE_TABLE = "bench_event_seal"

FORK = multiprocessing.get_context("fork")


# --- (a) throughput -----------------------------------------------------------------------------


def read_pending(batch: int) -> tuple[int, float]:
    """Baseline: read every pending event's id and canonical bytes with the sealer's query, batch by batch."""
    from audit.models import AuditEvent

    started = time.perf_counter()
    total, last = 0, 0
    while True:
        rows = list(
            AuditEvent.objects.filter(sequence__isnull=True, id__gt=last)
            .order_by("id")
            .values_list("id", "canonical")[:batch]
        )
        if not rows:
            return total, time.perf_counter() - started
        total += len(rows)
        last = rows[-1][0]


def measure_throughput(events: int, breakdown: bool) -> None:
    """Part (a): generate, read (baseline), optionally break one batch down, seal, check."""
    from django.conf import settings

    from audit.sealing import ledger_seal_all

    batch = settings.LEDGER_SEAL_BATCH
    common.title(f"(a) Sealing throughput: {events:,} pending events, batches of {batch:,}")
    common.reset_ledger()
    common.show("generate with COPY (setup, not measured)", common.rate(events, common.copy_events(events)))
    common.settle(EVENT_TABLE)
    read_pending(batch)  # warm the cache once, so that both measurements read from memory
    read_count, read_seconds = read_pending(batch)
    if breakdown:
        seal_breakdown(batch)
    started = time.perf_counter()
    result = ledger_seal_all(sign=True)
    seal_seconds = time.perf_counter() - started
    seal_rate, read_rate = result.sealed / seal_seconds, read_count / read_seconds
    common.show("baseline: read the pending rows only", common.rate(read_count, read_seconds))
    common.show(
        "ours: ledger_seal_all(sign=True)",
        common.rate(result.sealed, seal_seconds),
        f">= {TARGET_SEAL_RATE:,}/s",
        seal_rate >= TARGET_SEAL_RATE,
    )
    common.show(
        "ratio seal rate / read rate",
        f"{seal_rate / read_rate:.3f} (sealing = {read_rate / seal_rate:.1f}× reading)",
    )
    common.show_ledger_check(common.check_ledger())


# --- (a) breakdown of one batch (all in rolled-back transactions) --------------------------------


def _event_indexes() -> list[tuple[str, str, bool, str]]:
    """(name, access method, needed by the sealer, statement that drops it) per index of the event table."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, am.amname, i.indisprimary OR i.indpred IS NOT NULL "
            "OR (i.indisunique AND pg_get_indexdef(i.indexrelid) LIKE '%%(sequence)%%'), con.conname "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
            "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid "
            "WHERE i.indrelid = %s::regclass ORDER BY c.relname",
            [EVENT_TABLE],
        )
        return [
            (
                name,
                method,
                needed,
                f"ALTER TABLE {EVENT_TABLE} DROP CONSTRAINT {constraint}"
                if constraint
                else f"DROP INDEX {name}",
            )
            for name, method, needed, constraint in cursor.fetchall()
        ]


def _seals_for(batch: int) -> tuple[list[tuple[int, int, bytes, bytes]], float]:
    """Compute one batch's seals in Python the way the sealer does; return them and the seconds it took."""
    from audit import merkle
    from audit.models import AuditEvent
    from audit.sealing import chain_hash

    pending = list(
        AuditEvent.objects.filter(sequence__isnull=True).order_by("id").values_list("id", "canonical")[:batch]
    )
    started = time.perf_counter()
    frontier, chain, seals = merkle.Frontier(), b"", []
    for event_id, canonical in pending:
        leaf = merkle.leaf_hash(bytes(canonical))
        chain = chain_hash(chain, leaf)
        frontier.append(leaf)
        seals.append((event_id, frontier.size, leaf, chain))
    return seals, time.perf_counter() - started


SEAL_UPDATE = (
    f"UPDATE {EVENT_TABLE} AS e SET sequence = v.seq, leaf_hash = v.leaf, chain_hash = v.chain, sealed_at = now() "
    "FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::bigint[]) AS seq, "
    "unnest(%s::bytea[]) AS leaf, unnest(%s::bytea[]) AS chain) AS v WHERE e.id = v.id"
)
SIDE_INSERT = (
    f"INSERT INTO {SIDE_TABLE} (event_id, sequence, leaf_hash, chain_hash, sealed_at) "
    "SELECT unnest(%s::bigint[]), unnest(%s::bigint[]), unnest(%s::bytea[]), unnest(%s::bytea[]), now()"
)


def _timed_rollback(statement: str, params: list, *, drop: tuple[str, ...] = (), setup: str = "") -> float:
    """Seconds ``statement`` takes in a transaction that is rolled back (after the ``drop`` statements)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for dropping in drop:
            cursor.execute(dropping)
        if setup:
            cursor.execute(setup)
        started = time.perf_counter()
        cursor.execute(statement, params)
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


def seal_breakdown(batch: int) -> None:
    """Where one batch's time goes: hashing in Python, the UPDATE with fewer indexes, a side table."""
    seals, hashing = _seals_for(batch)
    params = [[row[column] for row in seals] for column in range(4)]
    indexes = _event_indexes()
    gin = [(name, drop) for name, method, _, drop in indexes if method == "gin"]
    unneeded = tuple(drop for _, _, needed, drop in indexes if not needed)
    count = len(seals)
    common.title(f"(a) Breakdown of one batch of {count:,} (statements rolled back)")
    common.show("hash: leaf + chain + frontier (Python)", f"{hashing * 1000:.0f} ms")
    common.show(
        f"UPDATE events, all {len(indexes)} indexes", f"{_timed_rollback(SEAL_UPDATE, params) * 1000:.0f} ms"
    )
    common.show(
        f"UPDATE events, without GIN {', '.join(name for name, _ in gin) or '-'}",
        f"{_timed_rollback(SEAL_UPDATE, params, drop=tuple(drop for _, drop in gin)) * 1000:.0f} ms",
    )
    common.show(
        f"UPDATE events, only the {len(indexes) - len(unneeded)} indexes sealing needs",
        f"{_timed_rollback(SEAL_UPDATE, params, drop=unneeded) * 1000:.0f} ms",
    )
    side = (
        f"CREATE TABLE {SIDE_TABLE} (event_id bigint PRIMARY KEY, sequence bigint NOT NULL UNIQUE, "
        "leaf_hash bytea NOT NULL, chain_hash bytea NOT NULL, sealed_at timestamptz NOT NULL)"
    )
    common.show(
        "what-if: INSERT seals into a side table",
        f"{_timed_rollback(SIDE_INSERT, params, setup=side) * 1000:.0f} ms",
    )
    common.vacuum_analyze(EVENT_TABLE)


# --- (b) lag ------------------------------------------------------------------------------------


def appender_main(rate: float, duration: float, barrier, results) -> None:
    """Append ``rate`` events a second for ``duration`` seconds, each in its own transaction.

    Paced by schedule: event i is due at start + i / rate; a late event is not skipped.
    """
    from django.db import connection

    connection.ensure_connection()
    barrier.wait(timeout=120)
    started = time.monotonic()
    total = round(rate * duration)
    for index in range(total):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        common.append_event(0, index)
    results.put(("appender", (total, time.monotonic() - started)))


def sealer_main(stop_after: float, barrier, results) -> None:
    """The project's sealer loop, for ``stop_after`` seconds."""
    from django.db import connection

    from audit.sealing import seal_loop

    connection.ensure_connection()
    barrier.wait(timeout=120)
    seal_loop(interval=SEAL_INTERVAL, stop_after=stop_after)
    results.put(("sealer", None))


def poller_main(stop_after: float, barrier, results) -> None:
    """Baseline: the sealer's polling (query; sleep when nothing is new) without any work.

    Returns (first id, last id, seen at) for each batch of new rows; a single appender commits
    its ids in order, so an id watermark sees every row.
    """
    from django.db import connection

    connection.ensure_connection()
    barrier.wait(timeout=120)
    started, last, seen = time.monotonic(), 0, []
    with connection.cursor() as cursor:
        while time.monotonic() - started < stop_after:
            cursor.execute(f"SELECT id FROM {EVENT_TABLE} WHERE id > %s ORDER BY id", [last])
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                time.sleep(SEAL_INTERVAL)
                continue
            seen.append((ids[0], ids[-1], time.time()))
            last = ids[-1]
    results.put(("poller", seen))


def run_lag_processes(rate: float, duration: float) -> dict:
    """Start appender, sealer and poller together; return what each reported."""
    common.close_connections()
    barrier = FORK.Barrier(4)
    results = FORK.Queue()
    processes = [
        FORK.Process(target=appender_main, args=(rate, duration, barrier, results)),
        FORK.Process(target=sealer_main, args=(duration + DRAIN, barrier, results)),
        FORK.Process(target=poller_main, args=(duration + DRAIN, barrier, results)),
    ]
    for process in processes:
        process.start()
    barrier.wait(timeout=120)
    reports = dict(results.get(timeout=duration * 3 + 120) for _ in processes)
    for process in processes:
        process.join()
        if process.exitcode:
            raise SystemExit(f"A lag process failed (exit code {process.exitcode}).")
    return reports


def event_times() -> dict[int, tuple[float, float | None]]:
    """id -> (occurred_at, sealed_at) as epoch seconds, for every event."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, extract(epoch FROM occurred_at)::float8, extract(epoch FROM sealed_at)::float8 FROM {EVENT_TABLE}"
        )
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def poller_lags(
    seen: list[tuple[int, int, float]], times: dict[int, tuple[float, float | None]]
) -> list[float]:
    """Seen-at minus occurred-at for every event the baseline poller saw."""
    return [
        seen_at - times[event_id][0]
        for first, last, seen_at in seen
        for event_id in range(first, last + 1)
        if event_id in times
    ]


def show_lag(label: str, lags: list[float], target: bool) -> float:
    p50, p99, worst = (common.percentile(lags, q) for q in (0.5, 0.99, 1.0))
    text = f"p50 {p50:.3f} s  p99 {p99:.3f} s  max {worst:.3f} s"
    if target:
        common.show(label, text, f"p99 <= {TARGET_LAG_P99:.0f} s", p99 <= TARGET_LAG_P99)
    else:
        common.show(label, text)
    return p99


def measure_lag(rate: float, duration: float) -> None:
    """Part (b): paced appends with the sealer loop and the baseline poller running beside them."""
    from audit.models import SignedTreeHead
    from audit.sealing import ledger_seal_all

    common.title(
        f"(b) Seal lag: {rate:,.0f} events/s for {duration:.0f} s, sealer loop every {SEAL_INTERVAL:.0f} s"
    )
    common.reset_ledger()
    common.settle(EVENT_TABLE)
    reports = run_lag_processes(rate, duration)
    appended, seconds = reports["appender"]
    times = event_times()
    unsealed = sum(1 for _, sealed in times.values() if sealed is None)
    achieved = appended / seconds
    common.show(
        "append rate achieved",
        f"{achieved:,.0f}/s ({appended:,} events)",
        f">= {rate * 0.98:,.0f}/s",
        achieved >= rate * 0.98,
    )
    common.show("signed heads during the run", f"{SignedTreeHead.objects.count()}")
    common.show("unsealed when the loop stopped", f"{unsealed:,}", "= 0", unsealed == 0)
    ours = show_lag(
        "ours: sealed_at - occurred_at",
        [sealed - occurred for occurred, sealed in times.values() if sealed],
        True,
    )
    base = show_lag("baseline: poller seen - occurred_at", poller_lags(reports["poller"], times), False)
    common.show("ratio p99 ours / baseline", f"{ours / base:.2f}")
    ledger_seal_all()
    common.show_ledger_check(common.check_ledger())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000, help="(a) events to seal (default 200000)")
    parser.add_argument("--rate", type=float, default=1000, help="(b) appends per second (default 1000)")
    parser.add_argument("--duration", type=float, default=30, help="(b) seconds of appending (default 30)")
    parser.add_argument("--breakdown", action="store_true", help="(a) also time the parts of one batch")
    parser.add_argument("--skip-throughput", action="store_true", help="run part (b) only")
    parser.add_argument("--skip-lag", action="store_true", help="run part (a) only")
    common.add_database_arguments(parser)
    options = common.parse_arguments(
        parser, smoke={"events": 2_000, "rate": 50.0, "duration": 1.0, "breakdown": False}
    )

    common.setup_django(options.database, fresh=options.fresh)
    print(f"ledger_seal: database {options.database}")
    if not options.skip_throughput:
        measure_throughput(options.events, options.breakdown)
    if not options.skip_lag:
        measure_lag(options.rate, options.duration)


if __name__ == "__main__":
    main()
