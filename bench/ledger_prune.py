"""Archive-then-prune of N ledger events: time per phase, archive size, space returned, verification.

Setup (not measured): one organisation with 10 workspaces; N events (default 1,000,000) written
with the COPY generator of ``common.py`` (canonical bytes by ``common.fast_canonical_bytes``,
checked against the ledger's own on every 50th event), of which all but the last ``--recent``
(default 5,000) occurred over a year ending 400 days ago: past the platform's floor of 12 months
and the database's own six months. One captured row change per event (``--row-changes-every``) in
``audit_rowchange``, linked to it as the sealer links captures. Sealed by the real ``ledger_seal``
with a signed tree head about every 100,000 events and one at the full size, so that
``ledger_verify()`` passes before anything is pruned (its time is shown for context).

Measured: ``prune_plan()`` + ``prune_start()`` + ``prune_resume()`` — what ``manage.py
ledger_prune --yes`` runs — timed as a whole and per phase (the phase functions of
``audit.retention.prune`` are wrapped with timers in this process only): plan; archive write
(the chosen events streamed from the database into the signed ZIP); archive check (from the file,
before anything is deleted); record (``retention.pruned``, sealed and signed); prune (batches of
5,000 through ``audit_prune``; per-batch p50/p99/max, and the first tenth of the batches against
the last, where a statement that scans more as the run goes on would show). Peak RSS of each
phase over the RSS at its start (VmHWM, reset through /proc/self/clear_refs). Then:
``ledger_verify()`` (must pass; it walks kept leaves and remaining events), and the database space:
``pg_total_relation_size`` (heap, indexes, TOAST) of ``audit_auditevent`` and ``audit_rowchange``
before, right after the prune (with the dead tuples then and the autovacuum runs during the prune:
autovacuum may reclaim them within a minute), after a plain ``VACUUM`` (which makes the space reusable but returns
little to the operating system; the dead tuples it reclaims are counted by pgstattuple when the
extension can be created, else by ``pg_stat_user_tables``), and after ``VACUUM FULL`` (which
rewrites the tables and returns the space; timed), and the size of ``audit_prunedleaf`` added.

Baseline, in the same run and on the same rows: what a plain "export then delete" costs, without
the archive's proofs and signatures, the kept leaves, the guard trigger or the checks of
``audit_prune``:

(a) the same JSON lines as the archive's ``events.jsonl`` (sequence and canonical bytes, in
    sequence order, read with one server-side cursor) compressed with ``zlib`` (level 6, as the
    ZIP's deflate) into a local file;
(b) ``DELETE`` of the same events, in the same batches of 5,000 sequences, from a plain copy of the
    ledger (``CREATE TABLE … AS SELECT``, no triggers, a unique index on ``sequence`` as the ledger
    has), together with their row changes from a plain copy of ``audit_rowchange`` (no index on
    ``event_id``, as the real table has none): the statements ``audit_prune`` runs, less its checks.

Each baseline runs once before and once after the prune (reading and deleting from the copies,
each delete in a transaction rolled back), and their mean is the baseline. The ratios are ours /
baseline: the whole run against (a) + (b), the archive's write and check against (a), the prune
against (b), and the archive's size against (a)'s file. A what-if without verdict: (b) with an
index on the copy's ``event_id``.

    .venv/bin/python bench/ledger_prune.py [--events 1000000] [--recent 5000] [--row-changes-every 1] [--head-every 100000] [--explain]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import re
import statistics
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = "bench_ledger_prune"
ORGANIZATION = "bench-ledger-prune"
WORKSPACES = 10
OLD_END_DAYS = 400  # the old events end this many days ago (past 12 months, and the database's 6)
OLD_SPAN_DAYS = 365
COPY_EVENTS = "bench_prune_events"
COPY_ROW_CHANGES = "bench_prune_row_changes"
LEDGER_TABLES = ("audit_auditevent", "audit_rowchange")
ZLIB_LEVEL = 6


# --- setup --------------------------------------------------------------------------------------


def prune_values(
    index: int,
    occurred_at: datetime,
    *,
    organization: int,
    workspaces: tuple[int, ...],
    old: int,
    old_start: float,
    old_spacing: float,
    recent_start: float,
    recent_spacing: float,
) -> dict:
    """``common.event_values`` in one of the bench's workspaces: the first ``old`` events spread
    over OLD_SPAN_DAYS ending OLD_END_DAYS ago, the rest over the last minutes."""
    if index < old:
        moment = datetime.fromtimestamp(old_start + index * old_spacing, UTC)
    else:
        moment = datetime.fromtimestamp(recent_start + (index - old) * recent_spacing, UTC)
    values = common.event_values(index, moment)
    workspace = workspaces[index % len(workspaces)]
    values.update(
        organization_id=organization,
        workspace_id=workspace,
        target_id=str(workspace),
        target_label=f"Workspace {workspace}",
    )
    return values


def tenancy() -> tuple[int, tuple[int, ...]]:
    """The bench organisation and its workspaces (created when missing); no SIEM sink is live."""
    from governance.tenancy.models import Organization, Workspace

    common.execute("TRUNCATE siem_deadletter, siem_sinkcursor, siem_sink RESTART IDENTITY CASCADE")
    organization, _ = Organization.objects.get_or_create(slug=ORGANIZATION, defaults={"name": "Prune bench"})
    workspaces = [
        Workspace.objects.get_or_create(
            organization=organization,
            slug=f"ws-{n}",
            defaults={"name": f"Workspace {n}", "data_region": "eu"},
        )[0]
        for n in range(WORKSPACES)
    ]
    return organization.pk, tuple(w.pk for w in workspaces)


def add_row_changes(every: int) -> int:
    """One captured row change for every ``every``-th generated event, linked to it (as the sealer
    links a capture to its service event). Inserted as the owner with triggers off: a fixture."""
    if every <= 0:
        return 0
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "INSERT INTO audit_rowchange (table_name, operation, row_id, old, new, db_user, application, "
            "actor_hint, transaction_id, occurred_at, event_id) "
            "SELECT 'tenancy_workspace', 'UPDATE', e.workspace_id::text, "
            "jsonb_build_object('id', e.workspace_id, 'name', e.data->'changes'->'name'->>'before', "
            "'slug', 'ws-' || e.workspace_id, 'data_region', 'eu'), "
            "jsonb_build_object('id', e.workspace_id, 'name', e.data->'changes'->'name'->>'after', "
            "'slug', 'ws-' || e.workspace_id, 'data_region', 'eu'), "
            "'portal', 'governance', 'system', 1000 + e.id, e.occurred_at, e.id "
            "FROM audit_auditevent AS e WHERE e.action = 'workspace.updated' AND e.id %% %s = 0",
            [every],
        )
        return cursor.rowcount


def build_ledger(options) -> None:
    """Tenancy, generated events (old ones first), their row changes; sealed under signed heads."""
    from django.conf import settings

    from audit.sealing import ledger_seal, ledger_seal_all

    common.reset_ledger()
    organization, workspaces = tenancy()
    ledger_seal_all()  # the tenancy's own events (recent) come first
    old = options.events - options.recent
    now = time.time()
    old_start = now - (OLD_END_DAYS + OLD_SPAN_DAYS) * 86400
    values = functools.partial(
        prune_values,
        organization=organization,
        workspaces=workspaces,
        old=old,
        old_start=old_start,
        old_spacing=OLD_SPAN_DAYS * 86400 / max(old, 1),
        recent_start=now - 600,
        recent_spacing=600 / max(options.recent, 1),
    )
    seconds = common.copy_events(options.events, values=values, fast_canonical=True)
    common.show("generate with COPY", common.rate(options.events, seconds))
    started = time.perf_counter()
    changes = add_row_changes(options.row_changes_every)
    common.show("row changes linked to events", common.rate(changes, time.perf_counter() - started))
    common.vacuum_analyze(*LEDGER_TABLES)
    batches_per_head = max(options.head_every // settings.LEDGER_SEAL_BATCH, 1)
    started, sealed, batch = time.perf_counter(), 0, 0
    while True:
        batch += 1
        result = ledger_seal(sign=batch % batches_per_head == 0, force_head=True)
        sealed += result.sealed
        if result.sealed == 0:
            break
    ledger_seal_all(sign=True)
    common.show("seal with signed heads", common.rate(sealed, time.perf_counter() - started))


def make_copies() -> None:
    """The baseline's plain copies of the two tables (no triggers; an index on sequence only)."""
    common.execute(
        f"DROP TABLE IF EXISTS {COPY_EVENTS}, {COPY_ROW_CHANGES}",
        f"CREATE TABLE {COPY_EVENTS} AS SELECT * FROM audit_auditevent",
        f"CREATE UNIQUE INDEX {COPY_EVENTS}_sequence ON {COPY_EVENTS} (sequence)",
        f"CREATE TABLE {COPY_ROW_CHANGES} AS SELECT * FROM audit_rowchange",
    )


# --- measuring ----------------------------------------------------------------------------------


def rss_mb(field: str) -> float:
    """VmRSS or VmHWM of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux: 5 to clear_refs); harmless where refused."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


class Phases:
    """Timers (and peak RSS over the start RSS) around functions of ``audit.retention.prune``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        self.start_mb: dict[str, float] = {}
        self.batches: list[float] = []

    def wrap(self, module, name: str, label: str, *, memory: bool = False, batches: bool = False) -> None:
        original = getattr(module, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if memory:
                reset_peak()
                start_mb = rss_mb("VmRSS")
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self.seconds[label] = self.seconds.get(label, 0.0) + elapsed
                if batches:
                    self.batches.append(elapsed)
                if memory:
                    self.peak_mb[label] = max(self.peak_mb.get(label, 0.0), rss_mb("VmHWM") - start_mb)
                    self.start_mb[label] = start_mb

        setattr(module, name, timed)


def chosen_sql(table: str, bound: int, cutoff: datetime) -> str:
    return (
        f"SELECT sequence, canonical FROM {table} WHERE sequence IS NOT NULL AND sequence <= {int(bound)} "
        f"AND occurred_at < '{cutoff.isoformat()}' ORDER BY sequence"
    )


def chosen_sequences(bound: int, cutoff: datetime) -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT sequence FROM {COPY_EVENTS} WHERE sequence IS NOT NULL AND sequence <= %s "
            "AND occurred_at < %s ORDER BY sequence",
            [bound, cutoff],
        )
        return [row[0] for row in cursor.fetchall()]


def baseline_write(directory: Path, bound: int, cutoff: datetime) -> tuple[int, int, float]:
    """(a): the archive's JSON lines of the chosen events, zlib-compressed into a local file.
    Returns (events, bytes written, seconds)."""
    connection = common.raw_connection()
    path = directory / "baseline.jsonl.z"
    started, count = time.perf_counter(), 0
    compressor = zlib.compressobj(ZLIB_LEVEL)
    with path.open("wb") as handle, connection.transaction(), connection.cursor(name="bench_prune") as cursor:
        cursor.itersize = 2_000
        cursor.execute(chosen_sql(COPY_EVENTS, bound, cutoff))
        pending: list[bytes] = []
        for sequence, canonical in cursor:
            line = {"canonical": bytes(canonical).decode("utf-8"), "sequence": sequence}
            pending.append((json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n").encode())
            count += 1
            if len(pending) >= 2048:
                handle.write(compressor.compress(b"".join(pending)))
                pending = []
        handle.write(compressor.compress(b"".join(pending)))
        handle.write(compressor.flush())
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    path.unlink()
    return count, size, seconds


def baseline_delete(sequences: list[int], batch: int) -> tuple[int, float]:
    """(b): the same events and their row changes deleted from the plain copies in the same
    batches, in a transaction rolled back (so it can run again). Returns (events, seconds)."""
    from django.db import connection, transaction

    deleted = 0
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(sequences), batch):
            chunk = sequences[start : start + batch]
            cursor.execute(
                f"DELETE FROM {COPY_ROW_CHANGES} AS c USING {COPY_EVENTS} AS e "
                "WHERE c.event_id = e.id AND e.sequence = ANY(%s)",
                [chunk],
            )
            cursor.execute(f"DELETE FROM {COPY_EVENTS} WHERE sequence = ANY(%s)", [chunk])
            deleted += cursor.rowcount
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return deleted, seconds


def sizes(*tables: str) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        return {
            table: cursor.execute("SELECT pg_total_relation_size(%s)", [table]).fetchone()[0]
            for table in tables
        }


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def dead_tuples(table: str, exact: bool) -> str:
    """Dead tuples of ``table`` (pgstattuple when available, else the statistics' estimate)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if exact:
            cursor.execute(
                "SELECT dead_tuple_count, dead_tuple_len, free_space FROM pgstattuple(%s::regclass)", [table]
            )
            count, length, free = cursor.fetchone()
            return f"{count:,} dead ({megabytes(length)}), free {megabytes(free)} (pgstattuple)"
        cursor.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(1.1)
        cursor.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s", [table])
        return f"{cursor.fetchone()[0]:,} dead (pg_stat_user_tables estimate)"


def autovacuum_counts() -> dict[str, int]:
    """How many times autovacuum has vacuumed each ledger table so far."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, autovacuum_count FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            [list(LEDGER_TABLES)],
        )
        return dict(cursor.fetchall())


def pgstattuple_available() -> bool:
    from django.db import DatabaseError

    try:
        common.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
    except DatabaseError as error:  # a missing contrib package only loses precision
        print(f"  (pgstattuple unavailable: {error}; dead tuples from pg_stat_user_tables)")
        return False
    return True


def explain_prune_statements(sequences: list[int], archive: int) -> None:
    """EXPLAIN of the two deletes ``audit_prune`` runs, for the run's last batch (after ANALYZE;
    no VACUUM, which would clear the dead tuples counted below). The sequence array is elided."""
    from django.db import connection

    chunk = sequences[-5_000:]
    common.execute(*(f"ANALYZE {table}" for table in (*LEDGER_TABLES, "audit_prunedleaf")))
    with connection.cursor() as cursor:
        for statement in (
            "DELETE FROM audit_rowchange AS c USING audit_auditevent AS e, audit_prunedleaf AS p "
            "WHERE c.event_id = e.id AND e.sequence = ANY(%s) AND p.sequence = e.sequence AND p.archive_id = %s",
            "DELETE FROM audit_auditevent AS e USING audit_prunedleaf AS p "
            "WHERE e.sequence = ANY(%s) AND p.sequence = e.sequence AND p.archive_id = %s",
        ):
            cursor.execute("EXPLAIN " + statement, [chunk, archive])
            print("\n".join("    " + re.sub(r"'\{[0-9,]+\}'", "'{…}'", row[0]) for row in cursor.fetchall()))


def run_prune(phases: Phases):
    """``ledger_prune --yes``, as services: plan, start, resume (archive, check, record, prune)."""
    from audit.retention import prune

    started = time.perf_counter()
    plan = prune.prune_plan()
    run = prune.prune_start(plan=plan, requested_by="bench/ledger_prune.py")
    phases.seconds["plan"] = time.perf_counter() - started
    run = prune.prune_resume(run=run)
    return plan, run, time.perf_counter() - started


def time_verify():
    from audit.ledger_verification import ledger_verify

    started = time.perf_counter()
    report = ledger_verify()
    return report, time.perf_counter() - started


def show_verify(label: str, report, seconds: float) -> None:
    common.show(
        label,
        f"ok={report.ok} {common.rate(report.events, seconds)}, {report.pruned:,} kept leaves",
        "ok",
        report.ok,
    )
    if not report.ok:
        print(f"  first problem: {report.first}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="ledger size (default 1000000)")
    parser.add_argument(
        "--recent", type=int, default=5_000, help="the newest events, inside retention (default 5000)"
    )
    parser.add_argument(
        "--row-changes-every",
        type=int,
        default=1,
        help="one captured row change per this many events (default 1; 0 for none)",
    )
    parser.add_argument(
        "--head-every", type=int, default=100_000, help="events between signed heads (default 100000)"
    )
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the prune's delete statements")
    common.add_database_arguments(parser, default=DB_NAME)
    options = common.parse_arguments(
        parser, smoke={"events": 3_000, "recent": 500, "head_every": 1_000, "explain": False}
    )
    common.setup_django(options.database, fresh=options.fresh)

    from django.conf import settings

    from audit.models import LedgerArchiveState
    from audit.retention import prune
    from audit.retention.policy import platform_retention

    directory = Path(tempfile.mkdtemp(prefix="bench-ledger-prune-"))
    settings.LEDGER_ARCHIVE_DIR = directory
    print(
        f"ledger_prune: {options.events:,} events ({options.recent:,} recent), "
        f"database {options.database}, archive in {directory}"
    )
    common.title("Build the sealed ledger (setup, not measured)")
    build_ledger(options)
    make_copies()
    exact = pgstattuple_available()
    common.settle(*LEDGER_TABLES, COPY_EVENTS, COPY_ROW_CHANGES)
    report, seconds = time_verify()
    show_verify("ledger_verify() before the prune", report, seconds)
    if not report.ok:
        raise SystemExit("The generated ledger does not verify.")

    from audit.models import SignedTreeHead

    bound = SignedTreeHead.objects.order_by("-number").first().tree_size
    cutoff = platform_retention().cutoff(datetime.now(UTC))  # the workspaces have no policy: the floor
    sequences = chosen_sequences(bound, cutoff)

    common.title("Baseline (a) zlib file and (b) plain batched DELETE, before")
    written_before, zlib_size, write_before = baseline_write(directory, bound, cutoff)
    deleted_before, delete_before = baseline_delete(sequences, prune.BATCH)
    common.show("(a) JSON lines → zlib file", common.rate(written_before, write_before))
    common.show("(b) DELETE events + row changes, by 5,000", common.rate(deleted_before, delete_before))

    before = sizes(*LEDGER_TABLES, "audit_prunedleaf")
    autovacuums = autovacuum_counts()
    phases = Phases()
    phases.wrap(prune, "_archive", "archive + record")
    phases.wrap(prune, "archive_write", "archive write", memory=True)
    phases.wrap(prune, "archive_check", "archive check", memory=True)
    phases.wrap(prune, "_prune", "prune", memory=True)
    phases.wrap(prune, "_prune_batch", "batches", batches=True)
    common.title("Ours: prune_plan + prune_start + prune_resume (what ledger_prune --yes runs)")
    reset_peak()
    plan, run, total = run_prune(phases)
    record = (
        phases.seconds["archive + record"] - phases.seconds["archive write"] - phases.seconds["archive check"]
    )
    pruned = run.events_pruned
    common.show(
        "run finished", f"{run.state} ({run.events_pruned:,} pruned of {plan.total:,} planned)",
        "done", run.state == LedgerArchiveState.DONE,
    )  # fmt: skip
    common.show("whole run", common.rate(pruned, total))
    common.show("  plan (prune_plan + prune_start)", f"{phases.seconds['plan']:.2f} s")
    common.show("  archive write", common.rate(run.events_total, phases.seconds["archive write"]))
    common.show(
        "  archive check (from the file)", common.rate(run.events_total, phases.seconds["archive check"])
    )
    common.show("  record (retention.pruned, sealed, signed)", f"{record:.2f} s")
    common.show("  prune (audit_prune batches)", common.rate(pruned, phases.seconds["prune"]))
    batch_latency = common.Latency.of_seconds(phases.batches)
    common.show(f"  per batch ({len(phases.batches)} batches)", str(batch_latency))
    tenth = max(len(phases.batches) // 10, 1)
    first_mean = statistics.mean(phases.batches[:tenth]) * 1000
    last_mean = statistics.mean(phases.batches[-tenth:]) * 1000
    common.show("  first tenth of batches vs last tenth", f"{first_mean:.1f} ms vs {last_mean:.1f} ms mean")
    for label in ("archive write", "archive check", "prune"):
        common.show(
            f"  peak RSS over start: {label}",
            f"+{phases.peak_mb.get(label, float('nan')):.1f} MB (RSS {phases.start_mb.get(label, 0):.0f} MB at start)",
        )
    common.show("peak RSS of the process", f"{rss_mb('VmHWM'):.0f} MB")
    common.show(
        "archive", f"{run.file_size:,} B, {run.file_size / run.events_total:.1f} B/event ({run.file_name})"
    )

    # Right after the prune: autovacuum may reclaim the dead tuples within a minute.
    after_prune = sizes(*LEDGER_TABLES, "audit_prunedleaf")
    dead_after_prune = {table: dead_tuples(table, exact) for table in LEDGER_TABLES}
    autovacuums = {table: autovacuum_counts()[table] - autovacuums[table] for table in LEDGER_TABLES}
    report, verify_seconds = time_verify()
    show_verify("ledger_verify() after the prune", report, verify_seconds)
    if options.explain:
        print("  EXPLAIN of audit_prune's deletes (one batch):")
        explain_prune_statements(sequences, run.pk)

    common.title("Baseline again, after")
    written_after, _, write_after = baseline_write(directory, bound, cutoff)
    deleted_after, delete_after = baseline_delete(sequences, prune.BATCH)
    common.show("(a) JSON lines → zlib file", common.rate(written_after, write_after))
    common.show("(b) DELETE events + row changes, by 5,000", common.rate(deleted_after, delete_after))
    same = written_before == written_after == deleted_before == deleted_after == run.events_total == pruned
    common.show("same rows as ours", f"{written_before:,} written, {deleted_before:,} deleted", "yes", same)
    write_seconds = (write_before + write_after) / 2
    delete_seconds = (delete_before + delete_after) / 2

    common.title("Ratios, ours / baseline (same rows, same run)")
    archive_seconds = phases.seconds["archive write"] + phases.seconds["archive check"]
    common.show("ratio whole run / (a) + (b)", f"{total / (write_seconds + delete_seconds):.2f}")
    common.show("ratio archive write + check / (a)", f"{archive_seconds / write_seconds:.2f}")
    common.show("ratio archive write alone / (a)", f"{phases.seconds['archive write'] / write_seconds:.2f}")
    common.show("ratio prune / (b)", f"{phases.seconds['prune'] / delete_seconds:.2f}")
    common.show(
        "ratio archive size / (a) zlib file", f"{run.file_size / zlib_size:.2f} ({zlib_size:,} B for (a))"
    )
    common.execute(f"CREATE INDEX {COPY_ROW_CHANGES}_event ON {COPY_ROW_CHANGES} (event_id)")
    common.vacuum_analyze(COPY_ROW_CHANGES)
    indexed, indexed_seconds = baseline_delete(sequences, prune.BATCH)
    common.show(
        "what-if: (b) with an index on event_id",
        f"{common.rate(indexed, indexed_seconds)}; prune / it = {phases.seconds['prune'] / indexed_seconds:.2f}",
    )

    common.title("Database space (pg_total_relation_size: heap + indexes + TOAST)")
    for table in LEDGER_TABLES:
        common.show(f"{table} before", megabytes(before[table]))
        common.show(f"{table} right after the prune", megabytes(after_prune[table]))
        common.show("  dead tuples then", dead_after_prune[table])
        common.show("  autovacuum runs during the prune", f"{autovacuums[table]}")
        common.show("  dead tuples before VACUUM (later)", dead_tuples(table, exact))
    started = time.perf_counter()
    common.execute(*(f"VACUUM {table}" for table in LEDGER_TABLES))
    vacuum_seconds = time.perf_counter() - started
    after_vacuum = sizes(*LEDGER_TABLES)
    for table in LEDGER_TABLES:
        common.show(f"{table} after VACUUM", megabytes(after_vacuum[table]))
        if exact:
            common.show("  after VACUUM", dead_tuples(table, exact))
    common.show("VACUUM of both", f"{vacuum_seconds:.2f} s")
    started = time.perf_counter()
    common.execute(*(f"VACUUM FULL {table}" for table in LEDGER_TABLES))
    full_seconds = time.perf_counter() - started
    after_full = sizes(*LEDGER_TABLES, "audit_prunedleaf")
    returned = sum(before[table] - after_full[table] for table in LEDGER_TABLES)
    for table in LEDGER_TABLES:
        common.show(f"{table} after VACUUM FULL", megabytes(after_full[table]))
    common.show("VACUUM FULL of both", f"{full_seconds:.2f} s")
    added = after_full["audit_prunedleaf"] - before["audit_prunedleaf"]
    common.show("audit_prunedleaf added", f"{megabytes(added)} ({added / max(pruned, 1):.1f} B/event)")
    common.show(
        "returned to the OS after VACUUM FULL, net",
        f"{megabytes(returned - added)} ({(returned - added) / max(pruned, 1):,.0f} B/event)",
    )
    report, seconds = time_verify()
    show_verify("ledger_verify() after VACUUM FULL", report, seconds)
    common.execute(f"DROP TABLE IF EXISTS {COPY_EVENTS}, {COPY_ROW_CHANGES}")
    (directory / run.file_name).unlink(missing_ok=True)
    directory.rmdir()


if __name__ == "__main__":
    main()
