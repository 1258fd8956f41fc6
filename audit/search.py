"""Full-text search over the ledger: PostgreSQL tsvector with a GIN index; substring match elsewhere.

On PostgreSQL the match is on the ``search`` column, which each event gets once, at insert
(``audit_event_record``, or the insert trigger of migration 0005), and which the GIN index
``audit_event_search`` covers. Matching on the expression that fills it instead would compute it
for every row (a sequential scan of the whole ledger); ``tests/audit/test_search_plans.py`` runs
EXPLAIN to keep the changelist on the index."""

from __future__ import annotations

from django.db import connection, models
from django.db.models import Q
from django.db.models.expressions import RawSQL

SEARCH_INDEX = "audit_event_search"  # GIN on audit_auditevent.search (migration 0005)


def search_events(queryset: models.QuerySet, terms: str) -> models.QuerySet:
    """Events whose action, target, actor or data match ``terms`` (web-search syntax on PostgreSQL)."""
    terms = terms.strip()
    if not terms:
        return queryset
    if connection.vendor == "postgresql":
        # A constant column name; the terms travel as a bound parameter.
        match = RawSQL(
            '"audit_auditevent"."search" @@ websearch_to_tsquery(\'simple\'::regconfig, %s)',
            [terms],
            output_field=models.BooleanField(),
        )
        return queryset.filter(match)
    return queryset.filter(
        Q(action__icontains=terms) | Q(target_label__icontains=terms) | Q(actor_label__icontains=terms)
    )
