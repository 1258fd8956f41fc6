"""Runs at scale: a workflow's runs list, a run's timeline and the API's runs list over 1,000,000
step runs (200,000 runs of 5 steps), as an operator of the workspace.

Measured, each the median of ``--repeat`` requests after one warm-up, with the SQL queries counted,
against a plain first page of the same runs (``ORDER BY created_at DESC, id DESC LIMIT 25``) run
directly in the same process. Targets: < 200 ms and ≤ 10 queries per view.

Setup (not measured) writes with ``INSERT … SELECT generate_series`` as the database owner, capture
triggers off (``session_replication_role = replica``): a fixture, not a change anyone made.

    .venv/bin/python bench/runs_list.py [--runs 200000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = "bench_runs_list"
TARGET_MS = 200.0
TARGET_QUERIES = 10
STEPS = ("fetch", "score", "route", "book", "notify")
DEFINITION = {
    "trigger": {"type": "manual"},
    "steps": [
        {"id": step, "type": "transform", "expression": "1", "next": following}
        for step, following in zip(STEPS, [*STEPS[1:], None], strict=True)
    ],
}


def reset() -> None:
    common.execute(
        "SET session_replication_role = replica",
        "TRUNCATE workflows_steprun, workflows_execution, workflows_changerequest, workflows_workflowversion,"
        " workflows_workflow, tenancy_membership, tenancy_workspace, tenancy_organization, accounts_user"
        " RESTART IDENTITY CASCADE",
        "SET session_replication_role = DEFAULT",
    )
    common.reset_ledger()


def populate(runs: int) -> dict:
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from audit.services import audited_transaction
    from governance.tenancy.models import Membership, Organization, Workspace
    from workflows.changes.definition import content_hash
    from workflows.changes.models import ChangeRequest, Workflow, WorkflowVersion

    with audited_transaction():
        organization = Organization.objects.create(name="Bench", slug="bench")
        workspace = Workspace.objects.create(
            organization=organization, name="Bench", slug="bench", data_region="EU"
        )
        operator = User.objects.create(email="operator@bench.test", organization=organization, region="EU")
        operator.set_password("!")
        operator.save()
        Membership.objects.create(
            user=operator, organization=organization, workspace=workspace, role_id="workflow_operator"
        )
        workflow = Workflow.objects.create(
            workspace=workspace, name="Bench", slug="bench", data_region="EU", owner=operator, status="active"
        )
        version = WorkflowVersion.objects.create(
            workflow=workflow, number=1, definition=DEFINITION, content_hash=content_hash(DEFINITION),
            created_by=operator,
        )  # fmt: skip
        ChangeRequest.objects.create(
            workflow=workflow, version=version, author=operator, summary="bench", state="applied",
            submitted_at=timezone.now(),
        )  # fmt: skip
        workflow.active_version = version
        workflow.save(update_fields=["active_version"])
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            """INSERT INTO workflows_execution (workspace_id, workflow_id, version_id, trigger_kind, trigger_source,
                   status, idempotency_key, input_digest, created_at, started_at, finished_at)
               SELECT %s, %s, %s, 'manual', 'manual:bench', 'succeeded', '', repeat('0', 64),
                      now() - (n || ' seconds')::interval, now() - (n || ' seconds')::interval,
                      now() - (n || ' seconds')::interval + interval '2 seconds'
               FROM generate_series(1, %s) AS n""",
            [workspace.pk, workflow.pk, version.pk, runs],
        )
        cursor.execute(
            """INSERT INTO workflows_steprun (id, execution_id, workspace_id, step_id, step_type, attempt, status,
                   inputs_digest, outputs_digest, error_class, error_message, deliveries, claim_token, pins,
                   created_at, started_at, finished_at)
               SELECT gen_random_uuid(), e.id, e.workspace_id, s.step, 'transform', 1, 'succeeded',
                      repeat('1', 64), repeat('2', 64), '', '', 1, '', '{}'::jsonb,
                      e.created_at + (s.position || ' milliseconds')::interval,
                      e.created_at + (s.position || ' milliseconds')::interval,
                      e.created_at + (s.position || ' milliseconds')::interval + interval '100 milliseconds'
               FROM workflows_execution AS e
               CROSS JOIN unnest(%s::text[]) WITH ORDINALITY AS s(step, position)""",
            [list(STEPS)],
        )
        cursor.execute("SET session_replication_role = DEFAULT")
    common.vacuum_analyze("workflows_execution", "workflows_steprun")
    return {"operator": operator, "workflow": workflow}


def measure(function, repeat: int) -> tuple[float, int]:
    """Median milliseconds of ``function()`` over ``repeat`` runs after a warm-up, and the queries
    of a steady request (the warm-up's first request after sign-in also writes the session's
    bookkeeping, as a person's first page does; counted apart it would be 2-3 more)."""
    from django.db import connection

    function()
    queries = []
    with connection.execute_wrapper(lambda execute, sql, *rest: queries.append(sql) or execute(sql, *rest)):
        function()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000, len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200_000, help="runs of 5 steps (default 200000)")
    parser.add_argument("--repeat", type=int, default=15, help="requests per view (default 15)")
    common.add_database_arguments(parser, default=DB_NAME)
    options = common.parse_arguments(parser, smoke={"runs": 200, "repeat": 2})
    common.setup_django(options.database, fresh=options.fresh)

    from django.db import connection
    from django.test import Client
    from django.urls import reverse
    from knox.models import AuthToken

    from workflows.executions.models import Execution, StepRun

    print(
        f"runs_list: {options.runs:,} runs, {options.runs * len(STEPS):,} step runs, database {options.database}"
    )
    common.title("Setup (not measured)")
    reset()
    started = time.perf_counter()
    facts = populate(options.runs)
    common.show(
        "runs and step runs written", common.rate(StepRun.objects.count(), time.perf_counter() - started)
    )
    operator, workflow = facts["operator"], facts["workflow"]
    deep = Execution.objects.order_by("-created_at", "-id").values_list("pk", flat=True)[options.runs // 2]
    one = Execution.objects.order_by("-created_at", "-id").values_list("pk", flat=True)[options.runs // 3]

    def plain():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, status, created_at FROM workflows_execution WHERE workflow_id = %s"
                " ORDER BY created_at DESC, id DESC LIMIT 25",
                [workflow.pk],
            )
            return cursor.fetchall()

    common.title(f"As the operator, median of {options.repeat} after one warm-up")
    base_ms, base_queries = measure(plain, options.repeat)
    common.show("baseline: plain first page of 25 runs", f"{base_ms:,.1f} ms, {base_queries} query")
    _, token = AuthToken.objects.create(user=operator)
    api = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    pages = Client(HTTP_HOST="127.0.0.1")
    pages.force_login(operator)
    common.pass_mfa(pages, operator)
    for label, client, url in (
        ("runs page, first", pages, reverse("workflow-runs", args=[workflow.pk])),
        (
            "runs page, half-way (keyset)",
            pages,
            reverse("workflow-runs", args=[workflow.pk]) + f"?before={deep}",
        ),
        ("run page (timeline of 5 steps)", pages, reverse("run-detail", args=[one])),
        (
            "API GET /api/v1/executions/?workflow=",
            api,
            reverse("api-execution-list") + f"?workflow={workflow.pk}",
        ),
    ):

        def get(client=client, url=url, label=label):
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{label}: HTTP {response.status_code}")

        ms, queries = measure(get, options.repeat)
        common.show(label, f"{ms:,.1f} ms", f"< {TARGET_MS:.0f} ms", ms < TARGET_MS)
        common.show(f"{label}: queries", f"{queries}", f"<= {TARGET_QUERIES}", queries <= TARGET_QUERIES)
        common.show(f"{label}: ratio to the plain page", f"{ms / base_ms:.1f}")


if __name__ == "__main__":
    main()
