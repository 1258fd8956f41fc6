"""The completeness backstop's cost: governed-table writes with the capture trigger on and off.

Setup: one organisation, one workspace and N users with one membership each (default 100,000),
created in an ``audited_transaction()``; the capture triggers record those rows too (nothing
switches them off), and the capture table is emptied before measuring.

(a) Single-row writes: ``Membership.objects.filter(pk=...).update(role_id=...)``, each in its own
transaction, with ``tenancy_membership_capture_update`` enabled and disabled, in alternating
blocks (E D D E E D ...) so that drift cancels out. Every update really changes its row.

(b) Bulk write: one ``UPDATE`` of every membership, enabled and disabled, alternating, with the
row-change queue emptied and the table vacuumed between runs.

    .venv/bin/python bench/trigger_overhead.py [--members 100000] [--updates 2000] [--block 200] [--bulk-runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

TABLE = "tenancy_membership"
TRIGGER = "tenancy_membership_capture_update"
TARGET_SINGLE = 1.5
TARGET_BULK = 3.0
WARMUP = 50  # untimed single-row updates per mode before the blocks
ROLES = ("viewer", "auditor")  # every write flips a membership between these two


# --- setup --------------------------------------------------------------------------------------


def reset_governed_tables() -> None:
    """Empty organisations and everything that hangs off them (users, workspaces, memberships, ...)."""
    common.execute("TRUNCATE tenancy_organization, accounts_user RESTART IDENTITY CASCADE")
    common.reset_ledger()


def populate(members: int) -> list[int]:
    """One organisation, one workspace, ``members`` users each a viewer of it; return the membership ids."""
    from accounts.models import User
    from audit.services import audited_transaction
    from governance.tenancy.models import Membership, Organization, Workspace

    with audited_transaction():
        organization = Organization.objects.create(name="Bench", slug="bench")
        workspace = Workspace.objects.create(
            organization=organization, name="Bench", slug="bench", data_region="EU"
        )
        users = User.objects.bulk_create(
            (
                User(email=f"member{i}@bench.test", organization=organization, password="!")
                for i in range(members)
            ),
            batch_size=5000,
        )
        memberships = Membership.objects.bulk_create(
            (
                Membership(user=user, organization=organization, workspace=workspace, role_id=ROLES[0])
                for user in users
            ),
            batch_size=5000,
        )
    common.settle("accounts_user", TABLE)
    return [membership.pk for membership in memberships]


def set_trigger(enabled: bool) -> None:
    common.execute(f"ALTER TABLE {TABLE} {'ENABLE' if enabled else 'DISABLE'} TRIGGER {TRIGGER}")


def captured() -> int:
    from audit.models import RowChange

    return RowChange.objects.count()


def schedule(blocks: int) -> list[bool]:
    """Enabled/disabled per block in the order E D D E E D D E ..., each mode ``blocks`` times."""
    pattern = (True, False, False, True)
    return [pattern[index % 4] for index in range(2 * blocks)]


# --- (a) single-row writes ----------------------------------------------------------------------


def update_one(pk: int, role: str) -> float:
    """One single-row update in its own transaction; return its duration in seconds."""
    from django.db import transaction

    from governance.tenancy.models import Membership

    started = time.perf_counter()
    with transaction.atomic():
        Membership.objects.filter(pk=pk).update(role_id=role)
    return time.perf_counter() - started


def single_row(pks: list[int], updates: int, block: int) -> None:
    """Part (a): alternating blocks of single-row updates with the trigger on and off."""
    blocks = max(updates // block, 1)
    order = schedule(blocks)
    if len(pks) < block * len(order) + 2 * WARMUP:
        raise SystemExit("Not enough memberships for that many single-row updates; raise --members.")
    common.title(f"(a) Single-row UPDATE, one per transaction: {blocks} blocks of {block} per mode")
    durations: dict[bool, list[float]] = {True: [], False: []}
    block_means: list[tuple[bool, float]] = []
    targets = iter(pks)
    for enabled in (True, False):  # warm-up: plan caches, the trigger function compiled in this session
        set_trigger(enabled)
        for _ in range(WARMUP):
            update_one(next(targets), ROLES[1])
    before = captured()
    for enabled in order:
        set_trigger(enabled)
        times = [update_one(next(targets), ROLES[1]) for _ in range(block)]
        durations[enabled].extend(times)
        block_means.append((enabled, statistics.fmean(times)))
    set_trigger(True)
    for enabled, label in ((False, "baseline: trigger disabled"), (True, "ours: trigger enabled")):
        values = durations[enabled]
        common.show(
            label, f"{len(values) / sum(values):,.0f} updates/s", str(common.Latency.of_seconds(values))
        )
    ratio = statistics.fmean(durations[True]) / statistics.fmean(durations[False])
    pairs = pair_ratios(block_means)
    common.show("ratio per pair of blocks (spread = noise)", " ".join(f"{value:.2f}" for value in pairs))
    common.show(
        "ratio enabled / disabled, mean time", f"{ratio:.2f}×", f"<= {TARGET_SINGLE}×", ratio <= TARGET_SINGLE
    )
    rows = captured() - before
    expected = len(durations[True])
    common.show("row changes captured = enabled updates", f"{rows:,}", f"= {expected:,}", rows == expected)


def pair_ratios(block_means: list[tuple[bool, float]]) -> list[float]:
    """Enabled / disabled mean time for each adjacent pair of blocks."""
    ratios = []
    for (first_enabled, first), (_, second) in zip(block_means[::2], block_means[1::2], strict=True):
        enabled, disabled = (first, second) if first_enabled else (second, first)
        ratios.append(enabled / disabled)
    return ratios


# --- (b) bulk write -----------------------------------------------------------------------------


def update_all(role: str) -> float:
    """One UPDATE of every membership in its own transaction; return its duration in seconds."""
    from django.db import transaction

    from governance.tenancy.models import Membership

    started = time.perf_counter()
    with transaction.atomic():
        Membership.objects.update(role_id=role)
    return time.perf_counter() - started


def bulk(members: int, runs: int) -> None:
    """Part (b): alternating bulk updates with the trigger on and off, a clean queue before each."""
    from audit.models import RowChange

    common.title(f"(b) Bulk UPDATE of all {members:,} memberships: {runs} runs per mode")
    seconds: dict[bool, list[float]] = {True: [], False: []}
    # Start from a known role, so that every run below changes every row.
    set_trigger(False)
    update_all(ROLES[0])
    for number, enabled in enumerate(schedule(runs)):
        common.execute(f"TRUNCATE {RowChange._meta.db_table}")
        common.settle(TABLE, RowChange._meta.db_table)
        set_trigger(enabled)
        seconds[enabled].append(update_all(ROLES[(number + 1) % 2]))
        if enabled and captured() != members:
            raise SystemExit(f"The trigger captured {captured():,} rows instead of {members:,}.")
    set_trigger(True)
    for enabled, label in ((False, "baseline: trigger disabled"), (True, "ours: trigger enabled")):
        values = seconds[enabled]
        runs_text = " ".join(f"{value:.2f}" for value in values)
        common.show(label, f"median {statistics.median(values):.2f} s", f"runs {runs_text} s")
    ratio = statistics.median(seconds[True]) / statistics.median(seconds[False])
    common.show(
        "ratio enabled / disabled, median time", f"{ratio:.2f}×", f"<= {TARGET_BULK}×", ratio <= TARGET_BULK
    )
    common.execute(f"TRUNCATE {RowChange._meta.db_table}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=100_000, help="memberships to create (default 100000)")
    parser.add_argument(
        "--updates", type=int, default=2000, help="(a) single-row updates per mode (default 2000)"
    )
    parser.add_argument("--block", type=int, default=200, help="(a) updates per block (default 200)")
    parser.add_argument("--bulk-runs", type=int, default=3, help="(b) bulk updates per mode (default 3)")
    common.add_database_arguments(parser)
    options = common.parse_arguments(
        parser, smoke={"members": 500, "updates": 40, "block": 10, "bulk_runs": 1}
    )

    common.setup_django(options.database, fresh=options.fresh)
    print(f"trigger_overhead: {options.members:,} memberships, database {options.database}")
    common.title("Setup (not measured)")
    reset_governed_tables()
    started = time.perf_counter()
    pks = populate(options.members)
    common.show(
        "users + memberships in audited_transaction()", common.rate(len(pks), time.perf_counter() - started)
    )
    expected = 2 * len(pks) + 2  # every user and membership, the organisation and the workspace
    common.show(
        "row changes captured by the setup", f"{captured():,}", f"= {expected:,}", captured() == expected
    )
    from audit.models import RowChange

    common.execute(f"TRUNCATE {RowChange._meta.db_table}")
    common.settle(TABLE, RowChange._meta.db_table)
    try:
        single_row(pks, options.updates, options.block)
        bulk(options.members, options.bulk_runs)
    finally:
        set_trigger(True)


if __name__ == "__main__":
    main()
