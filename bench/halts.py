"""Halt latency: from the commit of a workspace halt to every running execution recorded ``halted``.

Setup: one organisation and workspace, an active approved workflow (transform → transform), and
N runs triggered through ``execution_trigger`` (default 1,000), each with its first step pending —
runs whose step is not in flight. Messages to workers are not sent (nothing would run them here).

(a) Stop: the halt is raised through ``halt_raise``; every pending step is then delivered to
``step_run_claim`` as a worker would: none may start (no ``step.started`` after ``halt.raised``).

(b) Record: the ``halts_enforce`` task runs as a worker runs it on receipt, right after the halt
commits; each run's latency is its ``finished_at`` (set when it is halted) minus the commit time.
Target: p99 ≤ 1 s. Baseline, in the same run: one plain ``UPDATE`` setting the same runs'
status (what the least bookkeeping would cost, no ledger), then undone.

    .venv/bin/python bench/halts.py [--executions 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

TARGET_P99_SECONDS = 1.0
DEFINITION = {
    "trigger": {"type": "manual"},
    "steps": [
        {"id": "score", "type": "transform", "expression": "input.amount * 2", "next": "tag"},
        {"id": "tag", "type": "transform", "expression": "{'score': prev}", "next": None},
    ],
}


def reset() -> None:
    common.execute(
        "TRUNCATE workflows_steprun, workflows_execution, workflows_halt, tenancy_organization, "
        "accounts_user RESTART IDENTITY CASCADE"
    )
    common.reset_ledger()


def populate(executions: int):
    """The organisation, its people, the workflow and ``executions`` queued runs; return (officer, workspace)."""
    from unittest import mock

    from django.utils import timezone

    from accounts.models import User
    from audit.services import audited_transaction
    from governance.tenancy.models import Membership, Organization, Workspace
    from workflows.changes.definition import content_hash
    from workflows.changes.models import ChangeRequest, Workflow, WorkflowVersion
    from workflows.executions import services

    with audited_transaction():
        organization = Organization.objects.create(name="Bench", slug="bench")
        workspace = Workspace.objects.create(
            organization=organization, name="Bench", slug="bench", data_region="EU"
        )
        people = {}
        for role in ("compliance_officer", "workflow_operator", "workflow_builder"):
            user = User.objects.create(
                email=f"{role}@bench.test", organization=organization, password="!", region="EU"
            )
            Membership.objects.create(user=user, organization=organization, workspace=workspace, role_id=role)
            people[role] = user
        workflow = Workflow.objects.create(
            workspace=workspace, name="Bench", slug="bench", data_region="EU", owner=people["workflow_builder"],
            environment="staging",
        )  # fmt: skip
        version = WorkflowVersion.objects.create(
            workflow=workflow, number=1, definition=DEFINITION, content_hash=content_hash(DEFINITION),
            created_by=people["workflow_builder"],
        )  # fmt: skip
        ChangeRequest.objects.create(
            workflow=workflow, version=version, author=people["workflow_builder"], summary="bench",
            state="applied", submitted_at=timezone.now(),
        )  # fmt: skip
        workflow.active_version = version
        workflow.status = "active"
        workflow.save(update_fields=["active_version", "status"])
    with mock.patch.object(services, "_dispatch"):  # no worker here: the rows stay pending
        for index in range(executions):
            services.execution_trigger(
                actor=people["workflow_operator"], workflow=workflow, input={"amount": index}
            )
    return people["compliance_officer"], workspace


def baseline(execution_ids: list[int]) -> float:
    """One UPDATE of the same runs' status, undone after: seconds."""
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE workflows_execution SET status = 'halted', finished_at = now() WHERE id = ANY(%s)",
            [execution_ids],
        )
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--executions", type=int, default=1000, help="running executions (default 1000)")
    common.add_database_arguments(parser, default="bench_halts")
    options = common.parse_arguments(parser, smoke={"executions": 20})
    common.setup_django(options.database, fresh=options.fresh)

    from django.db import transaction

    from audit.models import AuditEvent
    from workflows.executions import halts, services, tasks
    from workflows.executions.models import Execution, StepRun

    print(f"halts: {options.executions:,} running executions, database {options.database}")
    common.title("Setup (not measured)")
    reset()
    started = time.perf_counter()
    officer, workspace = populate(options.executions)
    common.show(
        "runs triggered through execution_trigger",
        common.rate(options.executions, time.perf_counter() - started),
    )
    ids = list(Execution.objects.values_list("pk", flat=True))
    pending = list(StepRun.objects.filter(status="pending").values_list("pk", flat=True))
    common.execute("ANALYZE workflows_execution", "ANALYZE workflows_steprun")

    common.title("(b) baseline: one UPDATE of the same runs' status (rolled back)")
    plain = baseline(ids)
    common.show("plain UPDATE of every run", f"{plain * 1000:.1f} ms")

    committed: dict[str, float] = {}

    def mark_commit() -> None:  # instead of sending the task: note the commit time, run it below
        transaction.on_commit(lambda: committed.setdefault("at", time.time()))

    halts.enforce_after_commit = mark_commit
    common.title(f"(b) halt of the workspace, then halts_enforce as a worker runs it ({len(ids):,} runs)")
    halt = halts.halt_raise(actor=officer, workspace=workspace, reason="Bench incident")
    raised_id = AuditEvent.objects.filter(action="halt.raised").latest("id").pk
    enforce_started = time.perf_counter()
    halted = tasks.halts_enforce()
    enforce_seconds = time.perf_counter() - enforce_started
    finished = Execution.objects.filter(pk__in=ids).values_list("status", "finished_at")
    latencies = [at.timestamp() - committed["at"] for status, at in finished if status == "halted"]
    common.show(
        "runs halted by the task", f"{halted:,}", f"= {len(ids):,}", halted == len(ids) == len(latencies)
    )
    common.show("halts_enforce, whole batch", common.rate(halted, enforce_seconds))
    latency = common.Latency.of_seconds(latencies)
    common.show("latency from the halt's commit", str(latency))
    common.show(
        "p99 latency",
        f"{latency.p99 / 1000:.3f} s",
        f"<= {TARGET_P99_SECONDS} s",
        latency.p99 / 1000 <= TARGET_P99_SECONDS,
    )
    common.show("ratio to the plain UPDATE", f"{enforce_seconds / plain:.0f}×")

    common.title("(a) every pending step delivered after the halt")
    claimed = [services.step_run_claim(step_run_id=pk) for pk in pending]
    started_after = AuditEvent.objects.filter(action="step.started", id__gt=raised_id).count()
    common.show(
        "claims that started a step", f"{sum(c is not None for c in claimed):,}", "= 0", not any(claimed)
    )
    common.show("step.started events after halt.raised", f"{started_after:,}", "= 0", started_after == 0)
    print(f"\n(halt {halt.pk} left in force in {options.database}; the next run resets it)")


if __name__ == "__main__":
    main()
