"""Helpers for ledger tests: record events through the service, attack the tables as the owner."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test import override_settings

from audit.models import RetentionPolicy
from audit.sealing import ledger_seal, ledger_seal_all
from audit.services import audit_event_record
from tests.factories import AuditEventFactory, OrganizationFactory, WorkspaceFactory

NOW = datetime.now(UTC)  # the database's clock decides what is recent: no mocked time here


def record(count: int, *, action: str = "workspace.updated", **kwargs) -> None:
    """Record ``count`` events, each in its own transaction, as requests would."""
    for index in range(count):
        with transaction.atomic():
            audit_event_record(action=action, actor=None, data={"n": index, **kwargs.get("data", {})})


@contextlib.contextmanager
def triggers_disabled():
    """Act as the database owner with triggers off, as an attacker with full access would."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    try:
        yield connection.cursor()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")


@pytest.fixture
def attack():
    return triggers_disabled


@pytest.fixture(autouse=True)
def _empty_row_change_queue(request):
    """Migrations that ran after the capture triggers (role permissions, say) left rows in the
    queue; tests that count what they seal start from an empty one."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None and not {"db", "world"} & set(request.fixturenames):
        return
    from audit.models import RowChange

    request.getfixturevalue("transactional_db" if marker and marker.kwargs.get("transaction") else "db")
    RowChange.objects.all().delete()


@pytest.fixture
def old_ledger(db, tmp_path):
    """Two workspaces (one under SOX), an organisation's own events and the platform's, 40
    months old, then 10 recent events; all sealed under signed heads."""
    organization = OrganizationFactory(slug="acme")
    plain = WorkspaceFactory(organization=organization, slug="plain")
    sox = WorkspaceFactory(organization=organization, slug="ledgers")
    RetentionPolicy.objects.create(workspace=sox, frameworks=["sox"])
    ledger_seal_all()
    old = NOW - timedelta(days=40 * 30)
    events = {"plain": [], "sox": [], "org": [], "platform": []}
    for index in range(12):
        events["plain"].append(AuditEventFactory(workspace=plain, occurred_at=old + timedelta(minutes=index)))
        events["sox"].append(AuditEventFactory(workspace=sox, occurred_at=old + timedelta(minutes=index)))
        if index % 3 == 0:
            events["org"].append(
                AuditEventFactory(organization_id=organization.pk, occurred_at=old + timedelta(minutes=index))
            )
            events["platform"].append(AuditEventFactory(occurred_at=old + timedelta(minutes=index)))
        if index % 5 == 4:
            ledger_seal(force_head=True)
    for _ in range(10):
        AuditEventFactory(workspace=plain, occurred_at=NOW - timedelta(days=1))
    ledger_seal_all()
    ledger_seal(force_head=True)
    with override_settings(LEDGER_ARCHIVE_DIR=tmp_path):
        yield {"organization": organization, "plain": plain, "sox": sox, "events": events, "dir": tmp_path}
