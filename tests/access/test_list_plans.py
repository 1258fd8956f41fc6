"""The large visible-to lists stay on their indexes: EXPLAIN (never a timer) of the queries the
control panel's changelists and the API's list endpoints really send, on seeded tables with fresh
statistics. A plan that reads a whole big table fails, and so does one that leaves the index that
serves the list.

Runs (executions) are listed per workflow on the workflow's runs index, and across workspaces from
the workspaces' rows only. Credentials live in the secrets store, where the list is a filter on ``workspace_id``.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from governance.tenancy import roles
from governance.tenancy.models import Membership, Role, Workspace
from tests.conftest import member
from tests.factories import UserFactory
from workflows.changes.models import Workflow
from workflows.credentials.models import Credential
from workflows.executions.models import Execution

WORKSPACES = 40
PER_WORKSPACE = 150  # 6,000 rows in each big table

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the plans are PostgreSQL's")


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _scans(plan: dict, table: str) -> list[tuple[str, str]]:
    """(node type, index name) of every node that reads ``table`` or one of its indexes (a bitmap
    index scan names the index only)."""
    return [
        (node["Node Type"], node.get("Index Name", ""))
        for node in _nodes(plan)
        if node.get("Relation Name") == table or node.get("Index Name", "").startswith(table)
    ]


def _explain(sql: str, params=(), using: str = "default", *, analyze: bool = False) -> dict:
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    with connections[using].cursor() as cursor:
        cursor.execute(f"EXPLAIN ({options}) {sql}", params)
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def _row_query(queries, table: str) -> str:
    """The list's row query: the longest SELECT of ``table``'s own columns (a single-page list has
    no LIMIT; other queries, such as a menu's EXISTS, may name the table too)."""
    selects = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith(f'SELECT "{table}".') and f'FROM "{table}"' in q["sql"]
    ]
    assert selects, [q["sql"] for q in queries.captured_queries]
    return max(selects, key=len)


def _rows_examined(plan: dict, table: str) -> int:
    """Rows of ``table`` that the executed plan looked at: what its scans returned or filtered out,
    over all their loops (whichever the access path, a read of the whole table counts all rows)."""
    return sum(
        (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get("Actual Loops", 1)
        for node in _nodes(plan)
        if node.get("Relation Name") == table
    )


def _analyze(*tables: str, using: str = "default") -> None:
    with connections[using].cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


@pytest.fixture
def workspaces(world) -> list[Workspace]:
    made = Workspace.objects.bulk_create(
        Workspace(organization=world.org, name=f"Team {n:03}", slug=f"team-{n:03}", data_region="EU")
        for n in range(WORKSPACES)
    )
    return [world.ws, *made]


@pytest.fixture
def many_workflows(world, workspaces):
    owner = world.users["workflow_builder"]
    Workflow.objects.bulk_create(
        Workflow(
            workspace=workspace,
            name=f"Flow {n:04}",
            slug=f"flow-{n:04}",
            data_region="EU",
            owner=owner,
        )
        for workspace in workspaces
        for n in range(PER_WORKSPACE)
    )
    _analyze("workflows_workflow", "tenancy_workspace", "tenancy_membership")


@pytest.fixture
def many_memberships(world, workspaces):
    users = UserFactory.create_batch(PER_WORKSPACE, organization=world.org)
    viewer = Role.objects.get(pk=roles.VIEWER)
    Membership.objects.bulk_create(
        Membership(user=user, organization=world.org, workspace=workspace, role=viewer)
        for workspace in workspaces[1:]
        for user in users
    )
    _analyze("tenancy_membership", "tenancy_workspace", "accounts_user")


@pytest.fixture
def many_credentials(world, workspaces):
    Credential.objects.using("secrets").bulk_create(
        Credential(
            id=uuid.uuid4(), workspace_id=workspace.pk, integration_id=workspace.pk, name=f"key {n:04}"
        )
        for workspace in workspaces
        for n in range(PER_WORKSPACE)
    )
    _analyze("workflows_credential", using="secrets")


@pytest.fixture
def many_executions(world, workspaces):
    """One workflow per workspace (world.ws's is the world's own), each with 150 runs."""
    from tests.conftest import SIMPLE_DEFINITION
    from workflows.changes.definition import content_hash
    from workflows.changes.models import WorkflowVersion

    owner = world.users["workflow_builder"]
    made = Workflow.objects.bulk_create(
        Workflow(workspace=workspace, name="Runs", slug="runs", data_region="EU", owner=owner)
        for workspace in workspaces[1:]
    )
    flows = [world.workflows["own"], *made]
    WorkflowVersion.objects.bulk_create(
        WorkflowVersion(workflow=flow, number=1, definition=SIMPLE_DEFINITION,
                        content_hash=content_hash(SIMPLE_DEFINITION), created_by=owner)
        for flow in flows[1:]
    )  # fmt: skip
    versions = dict(WorkflowVersion.objects.filter(number=1).values_list("workflow_id", "pk"))
    Execution.objects.bulk_create(
        Execution(
            workspace_id=flow.workspace_id, workflow=flow, version_id=versions[flow.pk], input_digest="0" * 64
        )
        for flow in flows
        for _ in range(PER_WORKSPACE)
    )
    _analyze("workflows_execution", "workflows_workflow", "tenancy_membership")
    return flows


def _admin_plan(client, url: str, table: str, params: dict | None = None) -> dict:
    """EXPLAIN ANALYZE of the changelist's row query."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(url), params or {})
    assert response.status_code == 200
    return _explain(_row_query(queries, table), analyze=True)


def _api_plan(user, url: str, table: str) -> dict:
    client = APIClient()
    client.force_authenticate(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(url))
    assert response.status_code == 200, response.content
    return _explain(_row_query(queries, table))


def _assert_no_full_read(plan: dict, table: str) -> list[tuple[str, str]]:
    scans = _scans(plan, table)
    assert scans, f"the plan reads {table}"
    assert "Seq Scan" not in {node for node, _ in scans}, scans
    return scans


def _assert_on_index(plan: dict, table: str, *indexes: str) -> None:
    """No full read of ``table``, and one of ``indexes`` (names or name prefixes) serves it."""
    scans = _assert_no_full_read(plan, table)
    assert any(name.startswith(indexes) for _, name in scans if name), scans


def test_workflow_changelist_reads_one_workspace_on_its_index(many_workflows, world, client):
    """GIVEN 6,150 workflows in 41 workspaces WHEN a compliance officer of one workspace opens the
    workflows changelist THEN its rows come from the workspace index, not a read of the table."""
    client.force_login(world.users["compliance_officer"])
    plan = _admin_plan(client, "admin:workflows_workflow_changelist", "workflows_workflow")
    assert _rows_examined(plan, "workflows_workflow") < WORKSPACES * PER_WORKSPACE // 10
    # Either index that leads with the workspace: the unique (workspace, slug) or the foreign key's.
    _assert_on_index(plan, "workflows_workflow", "workflows_workflow_slug", "workflows_workflow_workspace_id")


def test_workflow_api_list_reads_one_workspace_on_its_index(many_workflows, world):
    """GIVEN 6,150 workflows in 41 workspaces WHEN a viewer of one workspace lists workflows over
    the API THEN the page comes from an index of workflows, not a read of the table."""
    plan = _api_plan(world.users["viewer"], "api-workflow-list", "workflows_workflow")
    _assert_no_full_read(plan, "workflows_workflow")


def test_workflow_api_page_of_the_newest_workspace_does_not_walk_the_others(
    many_workflows, world, workspaces
):
    """GIVEN 6,150 workflows in 41 workspaces, and a viewer of the newest workspace (its rows last in
    the id order) who holds a grant on one workflow elsewhere WHEN they list workflows over the API
    (ordered by id) THEN the page is fetched from the ids they may see, not found by walking the
    primary key through every other workspace's rows first."""
    viewer = UserFactory(organization=world.org, region="EU")
    member(viewer, roles.VIEWER, workspaces[-1])
    elsewhere = Workflow.objects.filter(workspace=workspaces[1]).order_by("pk").first()
    assign_perm("view_workflow", viewer, elsewhere)
    _analyze("workflows_workflowusergrant", "tenancy_membership")
    client = APIClient()
    client.force_authenticate(viewer)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("api-workflow-list"))
    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["id"] == elsewhere.pk
    plan = _explain(_row_query(queries, "workflows_workflow"), analyze=True)
    assert _rows_examined(plan, "workflows_workflow") < WORKSPACES * PER_WORKSPACE // 10
    _assert_no_full_read(plan, "workflows_workflow")


def test_membership_changelist_reads_one_workspace_on_its_index(many_memberships, world, client):
    """GIVEN 6,000 memberships in 40 other workspaces WHEN the owner of one workspace opens the
    memberships changelist THEN its rows come from the membership indexes, not a read of the table."""
    client.force_login(world.users["workspace_owner"])
    plan = _admin_plan(client, "admin:tenancy_membership_changelist", "tenancy_membership")
    assert _rows_examined(plan, "tenancy_membership") < WORKSPACES * PER_WORKSPACE // 10
    _assert_on_index(
        plan, "tenancy_membership", "tenancy_membership_ws_role", "tenancy_membership_workspace_id"
    )


def test_membership_api_list_reads_one_workspace_on_its_index(many_memberships, world):
    """GIVEN 6,000 memberships in 40 other workspaces WHEN the owner of one workspace lists
    memberships over the API THEN the page comes from an index, not a read of the table."""
    plan = _api_plan(world.users["workspace_owner"], "membership-list", "tenancy_membership")
    _assert_no_full_read(plan, "tenancy_membership")


@pytest.mark.django_db(databases=["default", "secrets"])
def test_credential_lists_read_one_workspace_on_its_index(many_credentials, world, client):
    """GIVEN 6,150 credentials of 41 workspaces in the secrets store WHEN the owner of one
    workspace lists them (changelist and API) THEN the store answers from its workspace index."""
    owner = world.users["workspace_owner"]
    for run in ("admin", "api"):
        with CaptureQueriesContext(connections["secrets"]) as queries:
            if run == "admin":
                client.force_login(owner)
                response = client.get(reverse("admin:workflows_credential_changelist"))
            else:
                api = APIClient()
                api.force_authenticate(owner)
                response = api.get(reverse("api-credential-list"))
        assert response.status_code == 200
        plan = _explain(_row_query(queries, "workflows_credential"), using="secrets")
        scans = _assert_no_full_read(plan, "workflows_credential")
        assert any(name.startswith("workflows_credential_workspace_id") for _, name in scans), (run, scans)


# A workflow's runs by creation time; the foreign keys' indexes of the workflow and the workspace.
RUN_INDEXES = (
    "workflows_execution_runs",
    "workflows_execution_workflow_id",
    "workflows_execution_workspace_id",
)


def test_a_workflows_runs_are_read_on_its_runs_index(many_executions, world, client):
    """GIVEN 6,150 runs of 41 workflows in 41 workspaces WHEN a viewer opens a workflow's runs
    page, and lists that workflow's runs over the API THEN the page is read from an index that
    leads with the workflow or its workspace (the planner's choice), not found by reading the
    table."""
    own = many_executions[0]
    client.force_login(world.users["viewer"])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("workflow-runs", args=[own.pk]))
    assert response.status_code == 200
    assert len(response.context["runs"]) == 25
    plan = _explain(_row_query(queries, "workflows_execution"), analyze=True)
    assert _rows_examined(plan, "workflows_execution") < WORKSPACES * PER_WORKSPACE // 10
    _assert_on_index(plan, "workflows_execution", *RUN_INDEXES)
    api = APIClient()
    api.force_authenticate(world.users["viewer"])
    with CaptureQueriesContext(connection) as queries:
        listed = api.get(reverse("api-execution-list"), {"workflow": own.pk})
    assert listed.status_code == 200
    plan = _explain(_row_query(queries, "workflows_execution"), analyze=True)
    assert _rows_examined(plan, "workflows_execution") < WORKSPACES * PER_WORKSPACE // 10
    _assert_on_index(plan, "workflows_execution", *RUN_INDEXES)


def test_the_runs_api_list_does_not_read_the_table(many_executions, world):
    """GIVEN 6,150 runs in 41 workspaces WHEN a viewer of one workspace lists runs over the API
    THEN the page does not come from a read of the whole table."""
    plan = _api_plan(world.users["viewer"], "api-execution-list", "workflows_execution")
    _assert_no_full_read(plan, "workflows_execution")
