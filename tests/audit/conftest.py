"""Helpers for ledger tests: record events through the service, attack the tables as the owner."""

from __future__ import annotations

import contextlib

import pytest
from django.db import connection, transaction

from audit.services import audit_event_record


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
