"""The ledger's changelist stays on its indexes: EXPLAIN (never a timer) of the queries the
control panel really sends, on a seeded table with fresh statistics."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.canonical import canonical_bytes
from audit.models import AuditEvent
from audit.search import SEARCH_INDEX
from tests.factories import make_events

URL = "admin:audit_auditevent_changelist"
SEEDED = 5_000


@pytest.fixture
def auditor(world, client):
    client.force_login(world.users["auditor"])
    return client


def _events_with_target(count: int, *, workspace, target_label: str) -> None:
    rows = []
    for _ in range(count):
        values = {
            "uid": uuid.uuid4(),
            "occurred_at": timezone.now(),
            "category": "admin",
            "action": "workspace.updated",
            "outcome": "success",
            "actor_type": "system",
            "actor_id": None,
            "actor_label": "system",
            "organization_id": workspace.organization_id,
            "workspace_id": workspace.pk,
            "target_type": "tenancy.workspace",
            "target_id": str(workspace.pk),
            "target_label": target_label,
            "request_id": "",
            "ip": None,
            "user_agent": "",
            "data": {},
        }
        rows.append(AuditEvent(canonical=canonical_bytes(values), **values))
    AuditEvent.objects.bulk_create(rows)


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _scans_of_events(plan_json: str) -> list[tuple[str, str]]:
    """(node type, index name) of every node that reads the events table."""
    plan = json.loads(plan_json)[0]["Plan"]
    return [
        (node["Node Type"], node.get("Index Name", ""))
        for node in _nodes(plan)
        if node.get("Relation Name") == "audit_auditevent"
        or node.get("Index Name", "").startswith("audit_event")
    ]


def _plan_of_changelist(client, params: dict, *, index_paths_only: bool = False) -> str:
    """EXPLAIN of the changelist's row query (the one that reads the search column or filters).

    ``index_paths_only``: with sequential and bitmap scans off, so that the plan names the index
    that serves the query in order, as at a million events; on a few thousand rows the planner
    may as well read them all (and it misjudges a predicate the query repeats)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(URL), params)
    assert response.status_code == 200
    selects = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and "audit_auditevent" in q["sql"]
    ]
    row_query = max(selects, key=len)
    with connection.cursor() as cursor:
        switches = ("enable_seqscan", "enable_bitmapscan") if index_paths_only else ()
        for switch in switches:
            cursor.execute(f"SET {switch} = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {row_query}")
        plan = json.dumps(cursor.fetchone()[0])
        for switch in switches:
            cursor.execute(f"RESET {switch}")
        return plan


@pytest.fixture
def seeded(world):
    make_events(SEEDED, workspace=world.ws)
    _events_with_target(5, workspace=world.ws, target_label="Payroll export")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plans are PostgreSQL's")
def test_full_text_search_uses_the_search_index(seeded, auditor):
    """GIVEN 5,000 events and 5 that mention payroll WHEN an auditor searches the changelist THEN
    PostgreSQL answers from the GIN index on the search column, without reading the whole table."""
    scans = _scans_of_events(_plan_of_changelist(auditor, {"q": "payroll"}))
    assert SEARCH_INDEX in {index for _, index in scans}, scans
    assert "Seq Scan" not in {node for node, _ in scans}, scans


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plans are PostgreSQL's")
def test_the_unfiltered_first_page_reads_no_whole_table(seeded, auditor):
    """GIVEN 5,000 events WHEN the changelist opens THEN its rows come from an index, newest first."""
    scans = _scans_of_events(_plan_of_changelist(auditor, {}))
    assert scans, "the plan reads the events table"
    assert "Seq Scan" not in {node for node, _ in scans}, scans


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plans are PostgreSQL's")
def test_the_organisation_events_come_from_their_own_index(world, client):
    """GIVEN 5,000 workspace events, 20 of the organisation itself, and another organisation with
    20,000 workspace events and 2,000 of its own, newer WHEN an organisation auditor opens the ledger (all it may read, or filtered
    on the organisation's events) THEN an index gives its rows, newest first — for all it may read,
    the index of the organisations' own events, with no walk over the workspaces' rows or over the
    other organisation's. (At 1,000,000 events in two organisations, walking them took 0.2-0.9 s for a
    page: docs/benchmarks.md.)"""
    from audit.services import audit_event_record, audited_transaction
    from tests.conftest import member
    from tests.factories import UserFactory

    make_events(SEEDED, workspace=world.ws)
    for _ in range(20):
        with audited_transaction():
            audit_event_record(action="login.succeeded", actor=None, organization_id=world.org.pk)
    make_events(4 * SEEDED, workspace=world.foreign)
    _organisation_events(world.foreign_org, 2_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")
    user = UserFactory(organization=world.org, email="org.auditor@acme.test")
    member(user, "organization_auditor", organization=world.org)
    client.force_login(user)
    scans = _scans_of_events(_plan_of_changelist(client, {}, index_paths_only=True))
    assert scans == [("Index Scan", "audit_event_organization_own")], scans
    # Filtered on the organisation's events, the query states ``workspace_id IS NULL`` twice (the
    # filter's and the visible-to rule's); PostgreSQL multiplies their selectivities and, on this
    # small table, prefers the workspace index's entries without a workspace. At a million events
    # it takes the organisation's own index (docs/benchmarks.md); here it must still use an index.
    scans = _scans_of_events(_plan_of_changelist(client, {"workspace": "organization"}))
    assert scans, "the plan reads the events table"
    assert "Seq Scan" not in {node for node, _ in scans}, scans


def _organisation_events(organization, count: int) -> None:
    """``count`` sign-ins of ``organization`` itself (no workspace), written in one statement."""
    rows = []
    for _ in range(count):
        values = {
            "uid": uuid.uuid4(),
            "occurred_at": timezone.now(),
            "category": "authentication",
            "action": "login.succeeded",
            "outcome": "success",
            "actor_type": "system",
            "actor_id": None,
            "actor_label": "system",
            "organization_id": organization.pk,
            "workspace_id": None,
            "target_type": "",
            "target_id": "",
            "target_label": "",
            "request_id": "",
            "ip": None,
            "user_agent": "",
            "data": {},
        }
        rows.append(AuditEvent(canonical=canonical_bytes(values), **values))
    AuditEvent.objects.bulk_create(rows)
