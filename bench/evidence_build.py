"""Evidence package of 1,000,000 events: the real build against ``COPY TO`` of the same rows.

Setup (not measured): a sealed ledger where one workspace holds ``--events`` events and other
workspaces of the same organisation hold one event in 21 (so that scoping is exercised). The
events are written with COPY by ``common.copy_events`` (canonical bytes from the ledger's own
``canonical_bytes``, in a pool of processes), then sealed with the real ``ledger_seal`` (leaf and
chain hashes, sequence, Merkle tiles) and signed with ``ledger_seal_all`` (a signed tree head at
the full size). ``--reuse`` keeps such a ledger when the workspace already holds those events.

Measured, in the same run, over the same scope (the workspace, the period, ``sequence <=`` the
head's size):

(a) the baseline, ``COPY (SELECT sequence, canonical ... ORDER BY sequence) TO STDOUT``, read to
    the end by psycopg and discarded: the rows the package is made of, as fast as PostgreSQL hands
    them out;
(b) ``evidence_package_build()`` in a fresh subprocess (the time inside it, and its peak RSS, read
    by the subprocess from ``VmHWM`` in /proc/self/status); the ratio COPY time / build time has
    the target ≥ 0.30, peak RSS < 300 MB;
(c) the package's own ``verify.py``, extracted from the ZIP and run in a subprocess as an auditor
    would (time and peak RSS; no target).

    .venv/bin/python bench/evidence_build.py [--events 1000000] [--reuse] [--runs 1] [--keep PATH]
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = "bench_evidence"
ORGANIZATION = "bench-evidence-org"
WORKSPACE = "bench-evidence"
OTHERS = 20  # other workspaces; together they get one event in every OTHER_EVERY
OTHER_EVERY = 21
TARGET_RATIO = 0.30
TARGET_RSS_MB = 300
GENERATED_ACTION = "workspace.updated"


# --- setup --------------------------------------------------------------------------------------


def scoped_values(index: int, occurred_at: datetime, *, organization: int, workspace: int, others: list[int]):
    """``common.event_values`` placed in the bench workspace, or one in 21 in another workspace."""
    values = common.event_values(index, occurred_at)
    target = (
        others[index // OTHER_EVERY % len(others)] if index % OTHER_EVERY == OTHER_EVERY - 1 else workspace
    )
    values.update(
        organization_id=organization,
        workspace_id=target,
        target_id=str(target),
        target_label=f"Workspace {target}",
    )
    return values


def workspaces():
    """The bench organisation, its workspace and the other workspaces (created when missing)."""
    from governance.tenancy.models import Organization, Workspace

    organization, _ = Organization.objects.get_or_create(slug=ORGANIZATION, defaults={"name": "Bench & <Co>"})
    found = {}
    for slug in [WORKSPACE] + [f"{WORKSPACE}-other-{n}" for n in range(OTHERS)]:
        found[slug], _ = Workspace.objects.get_or_create(
            organization=organization, slug=slug, defaults={"name": f"<b>{slug}</b>", "data_region": "eu"}
        )
    return organization, found.pop(WORKSPACE), list(found.values())


def total_for(events: int) -> int:
    """Ledger size such that the bench workspace gets ``events`` of them."""
    total = events + events // (OTHER_EVERY - 1)
    while total - total // OTHER_EVERY < events:
        total += 1
    return total


def generated_in(workspace) -> int:
    from audit.models import AuditEvent

    return AuditEvent.objects.filter(workspace=workspace, action=GENERATED_ACTION).count()


def build_ledger(events: int) -> None:
    """COPY the events, seal them with the real sealer, sign a head at the full size."""
    from audit.sealing import ledger_seal, ledger_seal_all

    common.reset_ledger()
    organization, workspace, others = workspaces()
    total = total_for(events)
    values = functools.partial(
        scoped_values, organization=organization.pk, workspace=workspace.pk, others=[w.pk for w in others]
    )
    common.show(
        "generate with COPY (canonical_bytes)", common.rate(total, common.copy_events(total, values=values))
    )
    common.vacuum_analyze("audit_auditevent")
    started, sealed = time.perf_counter(), 0
    while result := ledger_seal(sign=False).sealed:
        sealed += result
    ledger_seal_all(sign=True)
    common.show("seal with ledger_seal, sign one head", common.rate(sealed, time.perf_counter() - started))


def seal_pending() -> None:
    """Earlier builds recorded ``evidence.package_built`` in the workspace: seal and sign them too."""
    from audit.sealing import ledger_seal_all

    result = ledger_seal_all(sign=True)
    if result.sealed:
        common.show("sealed events of earlier builds", f"{result.sealed}")


def setup(database: str, *, fresh: bool) -> None:
    """The benchmark database and its secrets store (``<database>_secrets``, read for the
    credentials file), created when missing and migrated."""
    common.ensure_database(f"{database}_secrets", fresh=fresh)
    common.setup_django(database, fresh=fresh)
    from django.core.management import call_command

    call_command("migrate", database="secrets", verbosity=0)


# --- measuring ----------------------------------------------------------------------------------


def scope_sql(workspace_id: int, start: datetime, end: datetime, tree_size: int) -> str:
    return (
        "SELECT sequence, canonical FROM audit_auditevent "
        f"WHERE workspace_id = {int(workspace_id)} AND occurred_at >= '{start.isoformat()}' "
        f"AND occurred_at < '{end.isoformat()}' AND sequence <= {int(tree_size)} ORDER BY sequence"
    )


def time_copy(query: str) -> tuple[int, int, float, float]:
    """COPY (query) TO STDOUT, read to the end and discarded: rows, bytes, seconds, CPU seconds
    (this process and its database backend)."""
    connection = common.raw_connection()
    backend = common.backend_pid()
    server, client = common.server_cpu(backend), common.client_cpu()
    started = time.perf_counter()
    size = 0
    with connection.cursor() as cursor, cursor.copy(f"COPY ({query}) TO STDOUT") as copy:
        for block in copy:
            size += len(block)
        rows = cursor.rowcount
    seconds = time.perf_counter() - started
    cpu = common.client_cpu() - client + common.server_cpu(backend) - server
    connection.commit()
    return rows, size, seconds, cpu


def run_child(arguments: list[str]) -> tuple[dict, float]:
    """Run a child process; return its JSON report (last stdout line) and wall seconds."""
    started = time.perf_counter()
    child = subprocess.run(arguments, capture_output=True, check=False)
    output, errors = child.stdout, child.stderr
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"{arguments[1]} failed ({child.returncode}):\n{errors.decode()[-3000:]}")
    lines = output.decode().strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        report = {"output": lines[-3:]}
    return report, seconds


def child_build(database: str, workspace_id: int, start: str, end: str, out: str) -> None:
    """In the subprocess: set up Django (no migration) and build the package; print JSON."""
    common.setup_django(database, migrate=False)
    from audit.evidence.builder import evidence_package_build
    from governance.tenancy.models import Workspace

    workspace = Workspace.objects.select_related("organization").get(pk=workspace_id)
    backend = common.backend_pid()
    server, client = common.server_cpu(backend), common.client_cpu()
    started = time.perf_counter()
    result = evidence_package_build(
        actor=None, workspace=workspace, start=datetime.fromisoformat(start), end=datetime.fromisoformat(end),
        out=Path(out),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    client = common.client_cpu() - client
    server = common.server_cpu(backend) - server
    print(json.dumps({
        "events": result.events, "seconds": seconds, "head": result.head_number, "peak_mb": peak_rss_mb(),
        "client_cpu": client, "server_cpu": server,
    }))  # fmt: skip


def peak_rss_mb() -> float:
    """This process's peak resident set since it started (VmHWM, reset by exec; in MB).

    Not ``ru_maxrss`` of the child from the parent (``wait4``, ``RUSAGE_CHILDREN``): it includes
    the parent's resident pages at the fork, before exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_verify(verifier: str, package: str, pem: str) -> None:
    """In the subprocess: run the extracted verify.py as ``__main__``; print its verdict and peak RSS."""
    import contextlib
    import io
    import runpy

    sys.argv = [verifier, package, "--public-key", pem]
    output = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(output):
        try:
            runpy.run_path(verifier, run_name="__main__")
            status = 0
        except SystemExit as exit_:
            status = exit_.code
    seconds = time.perf_counter() - started
    verdict = output.getvalue().strip().splitlines()[-1:] or ["(no output)"]
    print(json.dumps({
        "status": status, "seconds": seconds, "verdict": verdict[0], "peak_mb": peak_rss_mb(),
        "cpu": common.client_cpu(),
    }))  # fmt: skip


def child_profile(database: str, workspace_id: int, start: str, end: str, out: str, profile: str) -> None:
    import cProfile

    cProfile.runctx(
        "child_build(database, workspace_id, start, end, out)", globals(), locals(), filename=profile
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="events of the bench workspace (default 1000000)"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the ledger if the workspace already holds --events"
    )
    parser.add_argument("--runs", type=int, default=1, help="COPY/build pairs to time (default 1)")
    parser.add_argument("--keep", help="write the package here instead of a temporary directory")
    parser.add_argument("--profile", help="also build once under cProfile, writing the stats to this file")
    parser.add_argument("--child-build", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--child-verify", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--database", default=DB_NAME, help=f"benchmark database (default {DB_NAME})")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the benchmark database first")
    options = common.parse_arguments(
        parser, smoke={"events": 2_000, "reuse": False, "runs": 1, "profile": None}
    )
    if options.child_build:
        workspace_id, start, end, out = options.child_build
        return child_build(options.database, int(workspace_id), start, end, out)
    if options.child_verify:
        return child_verify(*options.child_verify)
    if options.child_profile:
        workspace_id, start, end, out, profile = options.child_profile
        return child_profile(options.database, int(workspace_id), start, end, out, profile)

    setup(options.database, fresh=options.fresh)
    from audit.models import AuditEvent, SignedTreeHead
    from audit.signing import load_signing_key, public_key_pem

    print(f"evidence_build: {options.events:,} events in one workspace, database {options.database}")
    common.title("Sealed ledger (setup, not measured)")
    _, workspace, _ = workspaces()
    if options.reuse and generated_in(workspace) == options.events:
        common.show("reused the existing ledger", f"{options.events:,} generated events in the workspace")
    else:
        build_ledger(options.events)
    seal_pending()
    head = SignedTreeHead.objects.order_by("-number").first()
    first = (
        AuditEvent.objects.filter(workspace=workspace)
        .order_by("occurred_at")
        .values_list("occurred_at", flat=True)[0]
    )
    start = first.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = datetime.now(UTC) + timedelta(seconds=1)
    query = scope_sql(workspace.pk, start, end, head.tree_size)
    total = AuditEvent.objects.count()
    common.show("ledger", f"{total:,} events, head #{head.number} at {head.tree_size:,}")
    common.settle("audit_auditevent")

    directory = Path(tempfile.mkdtemp(prefix="bench-evidence-"))
    out = Path(options.keep) if options.keep else directory / "package.zip"
    copies, builds, rss, cpus = [], [], [], []
    for run in range(options.runs):
        common.title(f"Run {run + 1}: COPY TO of the scope, then the package build (subprocess)")
        rows, size, seconds, copy_cpu = time_copy(query)
        copies.append(seconds)
        common.show(
            "baseline: COPY (sequence, canonical) TO STDOUT",
            f"{common.rate(rows, seconds)}, {size / 1e6:,.0f} MB",
        )
        # The build's own ledger event would be unsealed in scope for the next run: the window
        # ends now, and pending events are sealed before each run.
        report, wall = run_child([
            sys.executable, __file__, "--database", options.database,
            "--child-build", str(workspace.pk), start.isoformat(), end.isoformat(), str(out),
        ])  # fmt: skip
        builds.append(report["seconds"])
        rss.append(report["peak_mb"])
        events = report["events"]
        common.show("ours: evidence_package_build()", f"{common.rate(report['events'], report['seconds'])}")
        common.show("  subprocess wall time (with start-up)", f"{wall:.2f} s")
        build_cpu = report["client_cpu"] + report["server_cpu"]
        cpus.append((copy_cpu, build_cpu))
        common.show(
            "  CPU s: COPY (client+server) / build",
            f"{copy_cpu:.1f} / {build_cpu:.1f} ({report['client_cpu']:.1f} + {report['server_cpu']:.1f} server)",
        )
        common.show("  package size", f"{out.stat().st_size / 1e6:,.1f} MB")
        if rows != report["events"]:
            common.show(
                "  event counts differ", f"COPY {rows:,} / package {report['events']:,}", "equal", False
            )
        seal_pending()

    common.title("Result")
    copy_seconds, build_seconds = min(copies), min(builds)
    ratio = copy_seconds / build_seconds
    common.show(
        "ratio COPY time / build time (best runs)",
        f"{ratio:.3f}",
        f">= {TARGET_RATIO}",
        ratio >= TARGET_RATIO,
    )
    common.show(
        "ratio of CPU seconds COPY / build (context)",
        f"{min(c for c, _ in cpus) / min(b for _, b in cpus):.3f} (steadier than wall time under load)",
    )
    common.show(
        "peak RSS of the build process",
        f"{max(rss):,.0f} MB",
        f"< {TARGET_RSS_MB} MB",
        max(rss) < TARGET_RSS_MB,
    )

    common.title("Verify the package with its own verify.py (subprocess)")
    pem = directory / "ledger.pem"
    pem.write_text(public_key_pem(load_signing_key().public_key()))
    with zipfile.ZipFile(out) as archive:
        (directory / "verify.py").write_bytes(archive.read("verify.py"))
    report, _ = run_child([
        sys.executable, __file__, "--child-verify", str(directory / "verify.py"), str(out), str(pem),
    ])  # fmt: skip
    ok = report.get("status") == 0
    common.show("verify.py", common.rate(events, report["seconds"]), "exit 0", ok)
    common.show(
        "  CPU seconds of the verifier",
        f"{report['cpu']:.1f} ({events / report['cpu']:,.0f} events per CPU second)",
    )
    common.show("  peak RSS of the verifier", f"{report['peak_mb']:,.0f} MB")
    common.show("  its verdict", report["verdict"][:100])

    if options.profile:
        common.title(f"Profile of one build (cProfile, {options.profile})")
        seal_pending()
        run_child([
            sys.executable, __file__, "--database", options.database, "--child-profile", str(workspace.pk),
            start.isoformat(), (datetime.now(UTC) + timedelta(seconds=1)).isoformat(), str(out), options.profile,
        ])  # fmt: skip
        import pstats

        pstats.Stats(options.profile).sort_stats("cumulative").print_stats(25)
    if not options.keep:
        out.unlink(missing_ok=True)
    seal_pending()


if __name__ == "__main__":
    main()
