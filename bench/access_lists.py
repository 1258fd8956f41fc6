"""Visible-to lists at scale: ``restrict()`` over 1,000,000 workflows in 1,000 workspaces with
10,000 per-object grants, for a user with 3 memberships and 200 grants of their own.

Measured, each against a plain ``WHERE workspace_id IN (…)`` of the user's workspaces in the same run:

- the whole visible list, its count, and its first page (the API's order, 50 rows);
- the API's list endpoint with a token, and the control panel's changelist (signed in, MFA passed).

Every figure is the median of ``--repeat`` runs after one warm-up, with the SQL queries counted.
The decision point's per-request memo (the region rule) is warm, as it is once a request has
decided its permission; ``restrict``'s list itself must be one query.

Setup (not measured) writes with COPY as the database owner, capture triggers off
(``session_replication_role = replica``): it is a fixture, not a change anyone made.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = "bench_access_lists"
TARGET_MS = 100.0
TARGET_VIEW_QUERIES = 10
PAGE = 50
ROLE = "compliance_officer"  # workflow.view and admin.access in its workspaces
OTHER_ROLE = "viewer"
SEED = 21


def reset() -> None:
    """Empty the tables the setup fills (as the owner, triggers off)."""
    common.execute(
        "SET session_replication_role = replica",
        "TRUNCATE workflows_workflowusergrant, workflows_workflow, tenancy_membership, tenancy_workspace,"
        " tenancy_organization, accounts_user RESTART IDENTITY CASCADE",
        "SET session_replication_role = DEFAULT",
    )


def _copy(cursor, table: str, columns: str, rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if value is None else str(value) for value in row) + "\n")
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def populate(workflows: int, workspaces: int, grants: int, own_grants: int) -> dict:
    """The organisation, its workspaces, users, memberships, workflows and grants; the bench user."""
    from django.contrib.auth.models import Permission
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from governance.tenancy.models import Membership, Organization, Workspace

    rng = random.Random(SEED)
    reset()
    now = timezone.now().isoformat()
    with transaction.atomic():
        common.execute("SET LOCAL session_replication_role = replica")
        organization = Organization.objects.create(name="Bench", slug="bench")
        spaces = Workspace.objects.bulk_create(
            Workspace(organization=organization, name=f"Team {n:04}", slug=f"team-{n:04}", data_region="EU")
            for n in range(workspaces)
        )
        user = User.objects.create(email="officer@bench.test", organization=organization, region="EU")
        others = User.objects.bulk_create(
            User(email=f"member{n}@bench.test", organization=organization, region="EU", password="!")
            for n in range(workspaces)
        )
        # Spread over the id range: the API's first page (by id) must look past other workspaces.
        mine = [spaces[workspaces // 10], spaces[workspaces // 2], spaces[workspaces - 1]]
        Membership.objects.bulk_create(
            [
                *(Membership(user=user, organization=organization, workspace=w, role_id=ROLE) for w in mine),
                *(
                    Membership(user=other, organization=organization, workspace=w, role_id=OTHER_ROLE)
                    for other, w in zip(others, spaces, strict=True)
                ),
            ]
        )
        per_workspace = workflows // workspaces
        ids = [w.pk for w in spaces]
        with connection.cursor() as cursor:
            _copy(
                cursor,
                "workflows_workflow",
                "workspace_id, name, slug, description, environment, data_region, handles_pii, owner_id,"
                " status, created_at",
                (
                    (ids[n // per_workspace], f"Flow {n}", f"flow-{n}", "", "production", "EU", "f",
                     others[0].pk, "active", now)
                    for n in range(per_workspace * workspaces)
                ),
            )  # fmt: skip
            cursor.execute("SELECT min(id), max(id) FROM workflows_workflow")
            first, last = cursor.fetchone()
            view = Permission.objects.get(codename="view_workflow", content_type__app_label="workflows")
            # The user's own grants: workflows outside its three workspaces.
            theirs_only = [n for n in range(workspaces) if spaces[n] not in mine]
            own = [
                first + n * per_workspace + rng.randrange(per_workspace)
                for n in rng.sample(theirs_only, own_grants)
            ]
            theirs: set[tuple[int, int]] = set()
            while len(theirs) < grants - own_grants:  # one grant per (user, workflow)
                theirs.add((rng.choice(others).pk, rng.randint(first, last)))
            _copy(
                cursor,
                "workflows_workflowusergrant",
                "user_id, permission_id, content_object_id",
                [*((user.pk, view.pk, workflow) for workflow in own), *((u, view.pk, w) for u, w in theirs)],
            )
    common.settle(
        "workflows_workflow",
        "workflows_workflowusergrant",
        "tenancy_membership",
        "tenancy_workspace",
        "accounts_user",
    )
    return {"user": user, "workspaces": [w.pk for w in mine], "own_grants": own_grants}


def measure(function, repeat: int) -> tuple[float, int, object]:
    """Median milliseconds of ``function()`` over ``repeat`` runs, the queries of one run, its result."""
    from django.db import connection

    # Counted by an execute wrapper: a request through the test client resets Django's query log.
    queries = []
    with connection.execute_wrapper(lambda execute, sql, *rest: queries.append(sql) or execute(sql, *rest)):
        result = function()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000, len(queries), result


def show_pair(label: str, ours: tuple, plain: tuple, rows: str) -> bool:
    """Ours against the baseline: times, ratio, queries; the < 100 ms / one-query target on ours."""
    ours_ms, ours_queries, _ = ours
    plain_ms, plain_queries, _ = plain
    ok = ours_ms < TARGET_MS
    common.show(f"{label}: restrict()", f"{ours_ms:,.1f} ms, {ours_queries} query ({rows})", "< 100 ms", ok)
    common.show(f"{label}: plain workspace_id IN (…)", f"{plain_ms:,.1f} ms, {plain_queries} query")
    common.show(f"{label}: ratio restrict / plain", f"{ours_ms / plain_ms:.2f}")
    common.show(f"{label}: queries of restrict()", f"{ours_queries}", "= 1", ours_queries == 1)
    return ok and ours_queries == 1


def direct(facts: dict, repeat: int) -> bool:
    """``restrict()`` for the list, the count and the first page, against the plain filter."""
    from governance.access.queries import restrict
    from governance.core.context import ActorContext, bind_context
    from workflows.changes.models import Workflow

    user, workspaces = facts["user"], facts["workspaces"]
    common.title(f"restrict(Workflow, user, 'workflow.view'): median of {repeat} after one warm-up")
    with bind_context(ActorContext(actor=user)):
        restrict(Workflow.objects.all(), user, "workflow.view").exists()  # warms the region-rule memo

        def visible():
            return restrict(Workflow.objects.all(), user, "workflow.view")

        def plain():
            return Workflow.objects.filter(workspace_id__in=workspaces)

        ok = True
        ours = measure(lambda: list(visible().values_list("id", "name")), repeat)
        base = measure(lambda: list(plain().values_list("id", "name")), repeat)
        ok &= show_pair("list (id, name)", ours, base, f"{len(ours[2]):,} rows against {len(base[2]):,}")
        ours = measure(lambda: visible().count(), repeat)
        base = measure(lambda: plain().count(), repeat)
        ok &= show_pair("count", ours, base, f"{ours[2]:,} against {base[2]:,}")
        ours = measure(lambda: list(visible().order_by("id")[:PAGE]), repeat)
        base = measure(lambda: list(plain().order_by("id")[:PAGE]), repeat)
        ok &= show_pair(f"first page ({PAGE}, by id)", ours, base, f"{len(ours[2])} rows")
        expected = 3 * (Workflow.objects.filter(workspace_id=workspaces[0]).count()) + facts["own_grants"]
        count = visible().count()
        common.show(
            "rows visible = 3 workspaces + own grants", f"{count:,}", f"= {expected:,}", count == expected
        )
        ok &= count == expected
    return ok


# What-if (no verdict), kept from the first runs for comparison: the same ids as a semi-join
# `id IN (<workspace ids> UNION <granted ids>)`. restrict() now takes the same two index-driven id
# sets but hands them to the scan as an array computed once (`id = ANY(ARRAY(…))`), which keeps the
# first page off a walk of the primary key; the roles are decided before the query.
WHAT_IF_IDS = """
    SELECT w.id FROM workflows_workflow w WHERE w.workspace_id IN (
        SELECT m.workspace_id FROM tenancy_membership m
        WHERE m.user_id = %(user)s AND m.workspace_id IS NOT NULL
          AND m.role_id IN (SELECT r.role_id FROM tenancy_rolepermission r WHERE r.action = 'workflow.view'))
    UNION
    SELECT g.content_object_id FROM workflows_workflowusergrant g
    JOIN auth_permission p ON p.id = g.permission_id
    WHERE g.user_id = %(user)s AND p.codename = 'view_workflow'
"""
WHAT_IF = f"""
    FROM workflows_workflow w JOIN tenancy_workspace s ON s.id = w.workspace_id
    WHERE s.organization_id = %(organization)s AND w.data_region = %(region)s AND w.id IN ({WHAT_IF_IDS})
"""


def what_if(facts: dict, repeat: int) -> None:
    """The UNION formulation's list, count and first page (no verdict)."""
    from django.db import connection

    user = facts["user"]
    params = {"user": user.pk, "organization": user.organization_id, "region": user.region}

    def run(sql: str):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    common.title("What-if (no verdict): the same rows as a semi-join on a UNION of id sets")
    for label, sql in (
        ("list (id, name)", f"SELECT w.id, w.name {WHAT_IF}"),
        ("count", f"SELECT count(*) {WHAT_IF}"),
        (f"first page ({PAGE}, by id)", f"SELECT w.id, w.name {WHAT_IF} ORDER BY w.id LIMIT {PAGE}"),
    ):
        ms, _, rows = measure(lambda sql=sql: run(sql), repeat)
        size = rows[0][0] if label == "count" else len(rows)
        common.show(f"what-if {label}", f"{ms:,.1f} ms ({size:,})")


def through_views(facts: dict, repeat: int) -> bool:
    """The API's list endpoint (a token) and the changelist (a signed-in session), against the plain page."""
    from django.test import Client
    from django.urls import reverse
    from knox.models import AuthToken

    from workflows.changes.models import Workflow

    user, workspaces = facts["user"], facts["workspaces"]
    _, token = AuthToken.objects.create(user=user)
    api = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    panel = Client(HTTP_HOST="127.0.0.1")
    panel.force_login(user)
    common.pass_mfa(panel, user)
    common.title(f"Through the views, as the user: median of {repeat} after one warm-up")
    base = measure(
        lambda: list(Workflow.objects.filter(workspace_id__in=workspaces).order_by("id")[:PAGE]), repeat
    )
    common.show(f"baseline: plain first page ({PAGE} rows)", f"{base[0]:,.1f} ms, {base[1]} query")
    ok = True
    for label, client, url in (
        ("API GET /api/v1/workflows/", api, reverse("api-workflow-list")),
        ("changelist /admin/…/workflow/", panel, reverse("admin:workflows_workflow_changelist")),
    ):

        def get(client=client, url=url, label=label):
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{label}: HTTP {response.status_code}")
            return response

        ms, queries, _ = measure(get, repeat)
        common.show(f"{label}", f"{ms:,.1f} ms, {queries} queries", f"<= {TARGET_VIEW_QUERIES} queries",
                    queries <= TARGET_VIEW_QUERIES)  # fmt: skip
        common.show(f"{label}: ratio to the plain page", f"{ms / base[0]:.1f}")
        ok &= queries <= TARGET_VIEW_QUERIES
    return ok


def explain(facts: dict) -> None:
    """EXPLAIN ANALYZE of restrict()'s count and first page."""
    from django.db import connection

    from governance.access.queries import restrict
    from governance.core.context import ActorContext, bind_context
    from workflows.changes.models import Workflow

    user = facts["user"]
    with bind_context(ActorContext(actor=user)):
        visible = restrict(Workflow.objects.all(), user, "workflow.view")
        for label, queryset in (("count", visible), ("first page", visible.order_by("id")[:PAGE])):
            sql, params = queryset.query.sql_with_params()
            if label == "count":
                sql = f"SELECT count(*) FROM ({sql}) AS rows"
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", params)
                print(f"\n-- {label}\n" + "\n".join(row[0] for row in cursor.fetchall()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workflows", type=int, default=1_000_000, help="workflows (default 1000000)")
    parser.add_argument("--workspaces", type=int, default=1_000, help="workspaces (default 1000)")
    parser.add_argument("--grants", type=int, default=10_000, help="per-object grants in all (default 10000)")
    parser.add_argument("--own-grants", type=int, default=200, help="grants held by the user (default 200)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per figure (default 7)")
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of the count and first page"
    )
    common.add_database_arguments(parser, default=DB_NAME)
    options = common.parse_arguments(
        parser, smoke={"workflows": 5_000, "workspaces": 50, "grants": 500, "own_grants": 20, "repeat": 1}
    )
    common.setup_django(options.database, fresh=options.fresh)
    print(
        f"access_lists: {options.workflows:,} workflows in {options.workspaces:,} workspaces, "
        f"{options.grants:,} grants ({options.own_grants} the user's), database {options.database}"
    )
    common.title("Setup (not measured)")
    started = time.perf_counter()
    facts = populate(options.workflows, options.workspaces, options.grants, options.own_grants)
    common.show("COPY of workflows, memberships and grants", f"{time.perf_counter() - started:.1f} s")
    ok = direct(facts, options.repeat)
    what_if(facts, options.repeat)
    ok &= through_views(facts, options.repeat)
    if options.explain:
        explain(facts)
    common.title("Summary")
    common.show("every target met", "yes" if ok else "no", "yes", ok)


if __name__ == "__main__":
    main()
