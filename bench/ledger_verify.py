"""Verification speed: ``ledger_verify()`` over a sealed ledger, against streaming the same rows.

Builds a sealed ledger of N events: COPY-generated unsealed events, sealed batch by batch with
a signed tree head about every 100,000 events (``ledger_seal(force_head=True)``). Then times
``ledger_verify()`` in this one process (one core for the Python side; the database server runs
beside it) and, as the baseline, the same query with the same columns and the same
``.values_list(...).iterator(chunk_size=...)`` without any checking, once before and once after
verification (their mean is the baseline, which cancels drift).

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


def stream_columns() -> tuple[str, ...]:
    """The columns ``ledger_verify`` reads, in its order."""
    from audit.canonical import CONTENT_COLUMNS

    return ("sequence", "canonical", "leaf_hash", "chain_hash", *CONTENT_COLUMNS)


def sealed_rows(limit: int | None = None, columns: tuple[str, ...] | None = None):
    """The verifier's query: sealed events in sequence order, streamed in chunks."""
    from audit.models import AuditEvent
    from audit.verification import CHUNK

    query = AuditEvent.objects.filter(sequence__isnull=False).order_by("sequence")
    rows = query.values_list(*(columns or stream_columns()))
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


def time_stream(columns: tuple[str, ...] | None = None) -> tuple[int, float]:
    """Baseline: stream every sealed row with the verifier's query and columns, checking nothing."""
    started = time.perf_counter()
    count = sum(1 for _ in sealed_rows(columns=columns))
    return count, time.perf_counter() - started


def time_verify():
    """``ledger_verify()`` and the seconds it took."""
    from audit.verification import ledger_verify

    started = time.perf_counter()
    report = ledger_verify()
    return report, time.perf_counter() - started


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

    rows = list(sealed_rows(BREAKDOWN_SAMPLE))
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
    count, seconds = time_raw_stream(stream_columns())
    common.show("raw server-side cursor, same columns", common.rate(count, seconds))
    count, seconds = time_raw_stream(stream_columns()[:4])
    common.show("raw server-side cursor, 4 hash columns only", common.rate(count, seconds))
    count, seconds = time_stream(stream_columns()[:4])
    common.show("ORM .values_list, 4 hash columns only", common.rate(count, seconds))
    mismatches, seconds = time_sql_column_check()
    common.show("what-if: column check in SQL, mismatches", f"{mismatches} ({common.rate(count, seconds)})")


# The canonical document rebuilt from the columns in SQL, as audit.canonical.content_of builds it.
SQL_DOCUMENT = """jsonb_build_object(
    'v', 1, 'uid', uid::text,
    'occurred_at', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'category', category, 'action', action, 'outcome', outcome,
    'actor', jsonb_build_object('type', actor_type, 'id', actor_id, 'label', actor_label),
    'organization_id', organization_id, 'workspace_id', workspace_id,
    'target', jsonb_build_object('type', target_type, 'id', target_id, 'label', target_label),
    'request', jsonb_build_object('id', request_id, 'ip', host(ip), 'user_agent', user_agent),
    'data', data)"""


def time_sql_column_check() -> tuple[int, float]:
    """What-if: the verifier's column check done by the database, returning only mismatching events."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM audit_auditevent WHERE sequence IS NOT NULL "
            f"AND {SQL_DOCUMENT} IS DISTINCT FROM convert_from(canonical, 'UTF8')::jsonb"
        )
        mismatches = cursor.fetchone()[0]
    return mismatches, time.perf_counter() - started


def time_raw_stream(columns: tuple[str, ...]) -> tuple[int, float]:
    """The sealed rows' ``columns`` through a server-side psycopg cursor, without Django's converters."""
    from audit.verification import CHUNK

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
    options = parser.parse_args()

    common.setup_django(options.database, fresh=options.fresh)
    print(f"ledger_verify: {options.events:,} events, database {options.database}")
    common.title("Build the sealed ledger (setup, not measured)")
    if options.reuse and ledger_ready(options.events):
        common.show("reused the existing ledger", f"{options.events:,} sealed events")
    else:
        build_ledger(options.events, options.head_every)

    common.settle("audit_auditevent")
    common.title("Verify (one process) against streaming the same rows")
    first_count, first = time_stream()
    report, verify_seconds = time_verify()
    second_count, second = time_stream()
    stream_seconds = (first + second) / 2
    common.show("baseline: stream rows, before verifying", common.rate(first_count, first))
    common.show("baseline: stream rows, after verifying", common.rate(second_count, second))
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
        "ratio verify rate / stream rate",
        f"{verify_rate / stream_rate:.2f} (verifying = {verify_seconds / stream_seconds:.1f}× streaming)",
    )
    if options.breakdown:
        breakdown()


if __name__ == "__main__":
    main()
