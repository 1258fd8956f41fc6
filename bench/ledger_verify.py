"""Verification speed: ``ledger_verify()`` over a sealed ledger, against streaming the same rows.

Builds a sealed ledger of N events: COPY-generated unsealed events, sealed batch by batch with
a signed tree head about every 100,000 events (``ledger_seal(force_head=True)``). Then times
``ledger_verify()`` in this one process (one core for the Python side; on PostgreSQL its column
check runs as one SQL statement on a second connection meanwhile) and, as the baseline, the
verifier's own query with the same 4 columns it streams (sequence, canonical, leaf_hash,
chain_hash) and the same ``.values_list(...).iterator(chunk_size=...)``, checking nothing, once
before and once after verification (their mean is the baseline, which cancels drift).

For context, not as the baseline: streaming all 21 columns (what the verifier streamed before
the column check moved into SQL); the verifier's Python half alone (stream, hashes, frontier); its
SQL column check alone; and a what-if, the same check with the canonical document parsed once
per row instead of once per compared column, alone and inside ``ledger_verify()`` (patched in
this process only). ``--breakdown`` adds ``ledger_verify(parallel=False)`` and per-step costs.

    .venv/bin/python bench/ledger_verify.py [--events 1000000] [--head-every 100000] [--reuse] [--breakdown]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

TARGET_RATE = 100_000
BREAKDOWN_SAMPLE = 100_000


# The columns ``ledger_verify`` streams on PostgreSQL (the column check runs in SQL).
HASH_COLUMNS = ("sequence", "canonical", "leaf_hash", "chain_hash")


def all_columns() -> tuple[str, ...]:
    """The 4 hash columns and the 17 content columns: what the verifier streamed when it checked
    the columns in Python (and still streams on other databases)."""
    from audit.canonical import CONTENT_COLUMNS

    return (*HASH_COLUMNS, *CONTENT_COLUMNS)


def sealed_rows(limit: int | None = None, columns: tuple[str, ...] = HASH_COLUMNS):
    """The verifier's query: sealed events in sequence order, streamed in chunks."""
    from audit.ledger_verification import CHUNK
    from audit.models import AuditEvent

    query = AuditEvent.objects.filter(sequence__isnull=False).order_by("sequence")
    rows = query.values_list(*columns)
    if limit is not None:
        rows = rows[:limit]
    return rows.iterator(chunk_size=CHUNK)


# --- building the ledger ------------------------------------------------------------------------


def ledger_ready(events: int) -> bool:
    """Whether the database already holds exactly ``events`` sealed events, nothing pending, heads up to date."""
    from audit.models import AuditEvent, LedgerState, SignedTreeHead

    state = LedgerState.objects.filter(pk=1).first()
    head = SignedTreeHead.objects.order_by("-number").first()
    return (
        state is not None
        and state.tree_size == events
        and head is not None
        and head.tree_size == events
        and not AuditEvent.objects.filter(sequence__isnull=True).exists()
        and AuditEvent.objects.count() == events
    )


def build_ledger(events: int, head_every: int) -> None:
    """Generate ``events`` unsealed events, then seal them with a signed head every ``head_every`` events."""
    from django.conf import settings

    from audit.sealing import ledger_seal

    common.reset_ledger()
    common.show("generate with COPY", common.rate(events, common.copy_events(events)))
    common.vacuum_analyze("audit_auditevent")
    batches_per_head = max(head_every // settings.LEDGER_SEAL_BATCH, 1)
    started, sealed, batch = time.perf_counter(), 0, 0
    while True:
        batch += 1
        result = ledger_seal(sign=batch % batches_per_head == 0, force_head=True)
        sealed += result.sealed
        if result.sealed == 0:
            break
    ledger_seal(sign=True, force_head=True)  # a head at the full size, if the last batch had none
    common.show(
        f"seal, heads every ~{batches_per_head * settings.LEDGER_SEAL_BATCH:,}",
        common.rate(sealed, time.perf_counter() - started),
    )


# --- measuring ----------------------------------------------------------------------------------


def time_stream(columns: tuple[str, ...] = HASH_COLUMNS) -> tuple[int, float]:
    """Baseline: stream every sealed row with the verifier's query and columns, checking nothing."""
    started = time.perf_counter()
    count = sum(1 for _ in sealed_rows(columns=columns))
    return count, time.perf_counter() - started


def time_verify(*, parallel: bool = True):
    """``ledger_verify(parallel=...)`` and the seconds it took."""
    from audit.ledger_verification import ledger_verify

    started = time.perf_counter()
    report = ledger_verify(parallel=parallel)
    return report, time.perf_counter() - started


def time_column_check(statement: str | None = None) -> tuple[int | None, float]:
    """The verifier's SQL column check alone (``audit.ledger_verification.COLUMN_CHECK_SQL``, or
    ``statement``): the first sequence whose columns disagree with its canonical bytes (None when
    intact), and the seconds."""
    from django.db import connection

    from audit.ledger_verification import COLUMN_CHECK_SQL

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(statement or COLUMN_CHECK_SQL)
        row = cursor.fetchone()
    return (row[0] if row else None), time.perf_counter() - started


# PostgreSQL flattens the LATERAL subquery of COLUMN_CHECK_SQL into the WHERE clause, so the
# expression ``convert_from(canonical, 'UTF8')::jsonb`` is evaluated once per comparison (11 per
# intact row). ``OFFSET 0`` keeps the subquery as a fence: one parse per row, same result.
LATERAL_DOCUMENT = "::jsonb AS d) AS c"
FENCED_DOCUMENT = "::jsonb AS d OFFSET 0) AS c"


def fenced_column_check_sql() -> str | None:
    """What-if: COLUMN_CHECK_SQL with its document subquery fenced (None if its text changed)."""
    from audit.ledger_verification import COLUMN_CHECK_SQL

    if COLUMN_CHECK_SQL.count(LATERAL_DOCUMENT) != 1:
        return None
    return COLUMN_CHECK_SQL.replace(LATERAL_DOCUMENT, FENCED_DOCUMENT)


def time_verify_patched(statement: str):
    """What-if: ``ledger_verify()`` with ``statement`` as its column check (patched in this process
    only, restored afterwards), and the seconds it took."""
    from audit import ledger_verification

    original = ledger_verification.COLUMN_CHECK_SQL
    ledger_verification.COLUMN_CHECK_SQL = statement
    try:
        return time_verify()
    finally:
        ledger_verification.COLUMN_CHECK_SQL = original


def time_hash_path() -> tuple[int, float]:
    """The verifier's Python half without the column check: stream the 4 hash columns, recompute
    and compare the leaf and chain hashes, append to the Merkle frontier (as ``ledger_verify``)."""
    from audit import merkle
    from audit.sealing import chain_hash

    started, count = time.perf_counter(), 0
    frontier, chain = merkle.Frontier(), b""
    for _sequence, canonical, stored_leaf, stored_chain in sealed_rows():
        leaf = merkle.leaf_hash(bytes(canonical))
        chain = chain_hash(chain, leaf)
        if bytes(stored_leaf) != leaf or bytes(stored_chain) != chain:
            raise SystemExit("The ledger does not verify; rebuild it (drop --reuse).")
        frontier.append(leaf)
        count += 1
    frontier.root()
    return count, time.perf_counter() - started


def _per_event(step, items: list) -> str:
    """Microseconds per item of ``step(item)`` over ``items``, results discarded as the verifier does."""
    started = time.perf_counter()
    for item in items:
        step(item)
    return f"{(time.perf_counter() - started) / len(items) * 1e6:.2f} µs"


def breakdown() -> None:
    """Per-event cost of each step of verification on rows in memory, and of streaming variants."""
    from audit import merkle
    from audit.canonical import CONTENT_COLUMNS, content_of, parse
    from audit.sealing import chain_hash

    rows = list(sealed_rows(BREAKDOWN_SAMPLE, all_columns()))
    canonicals = [bytes(row[1]) for row in rows]
    leaves = [merkle.leaf_hash(canonical) for canonical in canonicals]
    pairs = [(parse(bytes(row[1])), row) for row in rows[:: max(len(rows) // 10_000, 1)]]
    frontier = merkle.Frontier()

    common.title(f"Breakdown per event ({len(rows):,} rows in memory, no database)")
    common.show("bytes(canonical)", _per_event(lambda row: bytes(row[1]), rows))
    common.show("merkle.leaf_hash", _per_event(merkle.leaf_hash, canonicals))
    common.show("chain_hash", _per_event(lambda leaf: chain_hash(leaf, leaf), leaves))
    common.show("Frontier.append", _per_event(frontier.append, leaves))
    common.show("parse(canonical) (json.loads)", _per_event(parse, canonicals))
    common.show(
        "content_of(columns) (incl. format_time)",
        _per_event(lambda row: content_of(dict(zip(CONTENT_COLUMNS, row[4:], strict=True))), rows),
    )
    common.show(
        "column check: content_of(columns) == document",
        _per_event(
            lambda pair: pair[0] == content_of(dict(zip(CONTENT_COLUMNS, pair[1][4:], strict=True))), pairs
        ),
    )
    common.title("Streaming variants (database included)")
    count, seconds = time_raw_stream(all_columns())
    common.show("raw server-side cursor, all 21 columns", common.rate(count, seconds))
    count, seconds = time_raw_stream(HASH_COLUMNS)
    common.show("raw server-side cursor, 4 hash columns", common.rate(count, seconds))
    count, seconds = time_stream(all_columns())
    common.show("ORM .values_list, all 21 columns", common.rate(count, seconds))


def time_raw_stream(columns: tuple[str, ...]) -> tuple[int, float]:
    """The sealed rows' ``columns`` through a server-side psycopg cursor, without Django's converters."""
    from audit.ledger_verification import CHUNK

    connection = common.raw_connection()
    started, count = time.perf_counter(), 0
    with connection.transaction(), connection.cursor(name="bench_raw_stream") as cursor:
        cursor.itersize = CHUNK
        cursor.execute(
            f"SELECT {', '.join(columns)} FROM audit_auditevent WHERE sequence IS NOT NULL ORDER BY sequence"
        )
        for _ in cursor:
            count += 1
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="ledger size (default 1000000)")
    parser.add_argument(
        "--head-every", type=int, default=100_000, help="events between signed heads (default 100000)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the ledger if it already has exactly --events sealed events",
    )
    parser.add_argument("--breakdown", action="store_true", help="also time each verification step per event")
    common.add_database_arguments(parser)
    options = common.parse_arguments(
        parser, smoke={"events": 2_000, "head_every": 1_000, "reuse": False, "breakdown": False}
    )

    common.setup_django(options.database, fresh=options.fresh)
    print(f"ledger_verify: {options.events:,} events, database {options.database}")
    common.title("Build the sealed ledger (setup, not measured)")
    if options.reuse and ledger_ready(options.events):
        common.show("reused the existing ledger", f"{options.events:,} sealed events")
    else:
        build_ledger(options.events, options.head_every)

    common.settle("audit_auditevent")
    common.title("Verify (one process + the SQL column check beside it) against streaming the 4 hash columns")
    first_count, first = time_stream()
    report, verify_seconds = time_verify()
    second_count, second = time_stream()
    stream_seconds = (first + second) / 2
    common.show("baseline: stream 4 hash columns, before", common.rate(first_count, first))
    common.show("baseline: stream 4 hash columns, after", common.rate(second_count, second))
    verify_rate = report.events / verify_seconds
    common.show(
        "ours: ledger_verify()",
        common.rate(report.events, verify_seconds),
        f">= {TARGET_RATE:,}/s",
        verify_rate >= TARGET_RATE,
    )
    common.show(
        "verification result",
        f"ok={report.ok} events={report.events:,} heads={report.heads}",
        "ok",
        report.ok,
    )
    stream_rate = first_count / stream_seconds
    common.show(
        "ratio verify rate / 4-column stream rate",
        f"{verify_rate / stream_rate:.2f} (verifying = {verify_seconds / stream_seconds:.1f}× streaming)",
    )
    common.title("Context (no target): where the time goes")
    all_count, all_seconds = time_stream(all_columns())
    common.show("stream all 21 columns (the former baseline)", common.rate(all_count, all_seconds))
    common.show("ratio verify rate / 21-column stream rate", f"{verify_rate / (all_count / all_seconds):.2f}")
    count, seconds = time_hash_path()
    common.show("Python half: stream + hashes + frontier", common.rate(count, seconds))
    edited, check_seconds = time_column_check()
    common.show(
        "SQL column check alone (COLUMN_CHECK_SQL)",
        f"{common.rate(first_count, check_seconds)}, first mismatch: {edited}",
    )
    fenced = fenced_column_check_sql()
    if fenced is None:
        common.show("what-if: check with one jsonb parse per row", "skipped (COLUMN_CHECK_SQL changed shape)")
    else:
        edited, seconds = time_column_check(fenced)
        common.show(
            "what-if: check with one jsonb parse per row",
            f"{common.rate(first_count, seconds)}, first mismatch: {edited}",
        )
        patched, seconds = time_verify_patched(fenced)
        common.show(
            "what-if: ledger_verify() with that check",
            f"{common.rate(patched.events, seconds)} ok={patched.ok} (vs target {TARGET_RATE:,}/s)",
        )
    if options.breakdown:
        serial, serial_seconds = time_verify(parallel=False)
        common.show(
            "ledger_verify(parallel=False)", f"{common.rate(serial.events, serial_seconds)} ok={serial.ok}"
        )
        breakdown()


if __name__ == "__main__":
    main()
