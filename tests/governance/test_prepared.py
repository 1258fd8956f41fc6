"""``PreparedQuery``: a queryset compiled once gives, for any values, what the ORM gives."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import Count, Q, Subquery
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from governance.core.prepared import PreparedQuery
from governance.tenancy.models import Organization, Workspace


def _workspaces(organization_id, workspace_id):
    return (
        Workspace.objects.select_related("organization")
        .defer("organization__slug")
        .filter(Q(organization_id=organization_id) | Q(pk=workspace_id))
        .annotate(
            same_name=Subquery(Organization.objects.filter(pk=organization_id).values("name")[:1]),
            grants=Count("user_grants"),
        )
        .order_by("pk")
    )


def test_it_gives_the_orms_rows_related_objects_and_annotations_for_each_values(
    world, django_assert_num_queries
):
    """GIVEN a query with a join, a deferred column, a subquery and a value used twice WHEN it runs
    with several values THEN each time it returns what the ORM returns, in one statement."""
    other = Organization.objects.create(name="Other", slug="other")
    elsewhere = Workspace.objects.create(
        organization=other, name="Elsewhere", slug="elsewhere", data_region="EU"
    )
    prepared = PreparedQuery(_workspaces, organization_id=int, workspace_id=int)
    for organization_id, workspace_id in ((world.org.pk, elsewhere.pk), (other.pk, -1), (-5, -5)):
        expected = list(_workspaces(organization_id, workspace_id))
        with django_assert_num_queries(1):
            found = prepared.run(organization_id=organization_id, workspace_id=workspace_id)
        assert [row.pk for row in found] == [row.pk for row in expected]
        for mine, theirs in zip(found, expected, strict=True):
            assert (mine.same_name, mine.grants, mine.name) == (theirs.same_name, theirs.grants, theirs.name)
            assert mine.organization.name == theirs.organization.name  # loaded with the row
            assert mine.organization.get_deferred_fields() == {"slug"}
            assert mine._state.adding is False
            assert mine._state.db == "default"


def test_values_are_checked_and_a_lock_is_a_lock(world):
    prepared = PreparedQuery(_workspaces, organization_id=int, workspace_id=int)
    with pytest.raises(TypeError):
        prepared.run(organization_id=1)
    unused = PreparedQuery(lambda organization_id, workspace_id: Workspace.objects.filter(pk=workspace_id),
                           organization_id=int, workspace_id=int)  # fmt: skip
    with pytest.raises(ValueError, match="organization_id"):
        unused.run(organization_id=1, workspace_id=1)
    locking = PreparedQuery(lambda pk: Workspace.objects.select_for_update().filter(pk=pk), pk=int)
    with transaction.atomic():
        assert [row.pk for row in locking.run(pk=world.ws.pk)] == [world.ws.pk]
        with CaptureQueriesContext(transaction.get_connection()) as captured:
            locking.run(pk=world.ws.pk)
        logged = captured.captured_queries[0]["sql"]
        assert logged.endswith("FOR UPDATE")
        assert f"= {world.ws.pk} " in logged  # logged with its value, as Django logs its own
        with transaction.get_connection().cursor() as cursor:  # prepared once on the server
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ['%FROM "tenancy_workspace"%FOR UPDATE'],
            )
            assert cursor.fetchone()[0] >= 1


@pytest.mark.django_db(transaction=True)
def test_a_lock_outside_a_transaction_is_refused_as_the_orm_refuses_it():
    locking = PreparedQuery(lambda pk: Workspace.objects.select_for_update().filter(pk=pk), pk=int)
    with transaction.atomic():
        assert locking.run(pk=1) == []
    with pytest.raises(TransactionManagementError):
        locking.run(pk=1)
