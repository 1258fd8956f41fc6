"""Full-text search over the ledger: PostgreSQL tsvector with a GIN index; substring match elsewhere."""

from __future__ import annotations

from django.db import connection, models
from django.db.models import Q
from django.db.models.expressions import RawSQL

# Must stay identical to the expression of the index audit_event_search (migration 0003).
DOCUMENT = "to_tsvector('simple'::regconfig, action || ' ' || target_label || ' ' || actor_label || ' ' || (data)::text)"


def search_events(queryset: models.QuerySet, terms: str) -> models.QuerySet:
    """Events whose action, target, actor or data match ``terms`` (web-search syntax on PostgreSQL)."""
    terms = terms.strip()
    if not terms:
        return queryset
    if connection.vendor == "postgresql":
        # The column name is a constant of this module; the terms travel as a bound parameter.
        match = RawSQL(  # noqa: S611
            f"{DOCUMENT} @@ websearch_to_tsquery('simple'::regconfig, %s)",
            [terms],
            output_field=models.BooleanField(),
        )
        return queryset.filter(match)
    return queryset.filter(
        Q(action__icontains=terms) | Q(target_label__icontains=terms) | Q(actor_label__icontains=terms)
    )
