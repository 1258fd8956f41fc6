"""Writing to the ledger. Every service that changes state calls ``audit_event_record`` inside
its own ``transaction.atomic()``, so the change and its record commit or fail together."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from audit.canonical import CONTENT_COLUMNS, CanonicalError, canonical_bytes
from audit.events import LedgerEvent, category_of
from audit.models import ActorType, AuditEvent, Outcome
from audit.triggers import may_cover
from governance.core.context import current_context
from governance.core.redaction import redact_data

MAX_EVENT_BYTES = 64 * 1024  # the canonical record, data included


class AuditError(ValueError):
    """The event cannot be recorded as asked (unknown code, oversized data, no transaction)."""


def _label(obj: Any) -> str:
    return str(obj)[:254] if obj is not None else ""


@contextmanager
def audited_transaction() -> Iterator[None]:
    """``transaction.atomic()`` for services, which record their own events in it.

    It marks nothing: the capture triggers record every write to a governed table, services'
    included, and the sealer links each capture to the service event of the same transaction
    that names its row (the event's target, or ``rows`` given to ``audit_event_record``). A
    write that no event of its transaction names becomes a ``db.row_changed`` event.
    """
    with transaction.atomic():
        yield


# Events per INSERT statement of ``audit_events_record`` (well under PostgreSQL's 65,535 parameters).
INSERT_CHUNK = 500


def audit_event_record(
    *,
    action: str,
    actor: Any,
    target: models.Model | None = None,
    organization_id: int | None = None,
    workspace_id: int | None = None,
    outcome: str = Outcome.SUCCESS,
    data: dict[str, Any] | None = None,
    require_transaction: bool = True,
    covers: Iterable[models.Model | str | None] = (),
) -> AuditEvent:
    """Record one event in the caller's transaction; raise ``AuditError`` rather than write a bad one.

    ``actor`` is a user, or None for the system. Request id, address and user agent come from
    the bound ``ActorContext``. ``covers`` names the other rows of governed tables this change
    wrote besides ``target`` (stored as ``data["covers"]``, ``"table:pk"`` each), or the rows
    written with a value (``rows_where``): their captures are linked to this event instead of
    becoming ``db.row_changed`` events.
    """
    if require_transaction and not transaction.get_connection().in_atomic_block:
        raise AuditError("Audit events are written inside the transaction of the change they record.")
    return _insert(
        *_prepared(
            action=action,
            actor=actor,
            target=target,
            organization_id=organization_id,
            workspace_id=workspace_id,
            outcome=outcome,
            data=data,
            covers=covers,
        )
    )


def audit_events_record(events: Iterable[dict[str, Any]]) -> list[AuditEvent]:
    """Record many events in the caller's transaction, in as few INSERTs as possible (e.g. a halt
    stopping a thousand runs). Each event is given and checked exactly as ``audit_event_record``
    takes and checks one (its keyword arguments, as a dict); one bad event writes none."""
    if not transaction.get_connection().in_atomic_block:
        raise AuditError("Audit events are written inside the transaction of the change they record.")
    prepared = [_prepared(**event) for event in events]
    recorded: list[AuditEvent] = []
    for start in range(0, len(prepared), INSERT_CHUNK):
        recorded += _insert_many(prepared[start : start + INSERT_CHUNK])
    return recorded


def _prepared(
    *,
    action: str,
    actor: Any,
    target: models.Model | None = None,
    organization_id: int | None = None,
    workspace_id: int | None = None,
    outcome: str = Outcome.SUCCESS,
    data: dict[str, Any] | None = None,
    covers: Iterable[models.Model | str | None] = (),
) -> tuple[dict[str, Any], bytes]:
    """An event's column values and canonical bytes, checked; raises ``AuditError``."""
    action = str(action)  # an app's EventCode member, stored as its code
    category = category_of(action)
    if category is None:
        raise AuditError(
            f"Unknown audit action {action!r}; declare it in its app's events module and register it."
        )
    # Dates, decimals and UUIDs become the strings DjangoJSONEncoder gives them, once.
    payload = json.loads(json.dumps(data or {}, cls=DjangoJSONEncoder))
    # No event may carry a credential: known secrets and credential formats are redacted here.
    payload = redact_data(payload)
    covered = sorted(
        {
            row if isinstance(row, str) else f"{row._meta.db_table}:{row.pk}"
            for row in covers
            if isinstance(row, str) or (row is not None and row.pk is not None)
        }
    )
    for entry in covered:
        table = entry.split(":", 1)[0]
        if not may_cover(action, table):
            raise AuditError(
                f"{action!r} events may not cover rows of {table!r}: declare the pair in "
                "audit.triggers.COVERING_ACTIONS (with a migration that reinstalls the settle function)."
            )
    if covered:
        payload["covers"] = covered

    context = current_context()
    is_service_account = getattr(actor, "is_service_account", False)
    is_user = actor is not None and getattr(actor, "is_authenticated", False) and not is_service_account
    values = {
        "uid": uuid.uuid4(),
        "occurred_at": timezone.now(),
        "category": str(category),
        "action": action,
        "outcome": str(outcome),
        "actor_type": str(_actor_type(is_user=is_user, is_service_account=is_service_account)),
        # actor_id names users only; a service account is named by its label (and the target).
        "actor_id": actor.pk if is_user else None,
        "actor_label": actor.email if is_user else (actor.label if is_service_account else "system"),
        "organization_id": organization_id,
        "workspace_id": workspace_id,
        "target_type": target._meta.label_lower if target is not None else "",
        "target_id": str(target.pk) if target is not None and target.pk is not None else "",
        "target_label": _label(target),
        "request_id": context.request_id if context else "",
        "ip": context.ip if context else None,
        "user_agent": context.user_agent if context else "",
        "data": payload,
    }
    try:
        canonical = canonical_bytes(values)
    except CanonicalError as error:
        raise AuditError(str(error)) from None
    if len(canonical) > MAX_EVENT_BYTES:
        raise AuditError(f"The event is {len(canonical)} bytes; the limit is {MAX_EVENT_BYTES}.")
    return values, canonical


def rows_where(model: type[models.Model], field: str, value: Any) -> str:
    """A ``covers`` entry for every row of ``model`` that the transaction wrote with ``field`` =
    ``value`` (the many rows one statement moves, e.g. data keys rewrapped under a new key)."""
    return f"{model._meta.db_table}:{model._meta.get_field(field).column}={value}"


def _actor_type(*, is_user: bool, is_service_account: bool) -> ActorType:
    if is_service_account:
        return ActorType.SERVICE_ACCOUNT
    return ActorType.USER if is_user else ActorType.SYSTEM


def _insert(values: dict[str, Any], canonical: bytes) -> AuditEvent:
    """One INSERT of one row: the request path's only ledger cost."""
    connection = transaction.get_connection()
    columns, placeholders = _insert_shape(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO audit_auditevent ({columns}) VALUES ({placeholders}) RETURNING id",  # noqa: S608
            _insert_params(values, canonical, connection),
        )
        return _inserted(cursor.fetchone()[0], values, canonical, connection)


def _insert_many(rows: list[tuple[dict[str, Any], bytes]]) -> list[AuditEvent]:
    """One INSERT of ``rows`` (values, canonical bytes), in order; the events with their ids."""
    connection = transaction.get_connection()
    columns, placeholders = _insert_shape(connection)
    params: list[Any] = []
    for values, canonical in rows:
        params += _insert_params(values, canonical, connection)
    tuples = ", ".join([f"({placeholders})"] * len(rows))
    with connection.cursor() as cursor:
        # RETURNING gives the ids in the order of VALUES for a plain INSERT (one statement, no
        # ON CONFLICT), which PostgreSQL and SQLite both keep (Django's bulk_create relies on it).
        cursor.execute(
            f"INSERT INTO audit_auditevent ({columns}) VALUES {tuples} RETURNING id",  # noqa: S608
            params,
        )
        ids = [row[0] for row in cursor.fetchall()]
    return [
        _inserted(event_id, values, canonical, connection)
        for event_id, (values, canonical) in zip(ids, rows, strict=True)
    ]


def _insert_shape(connection) -> tuple[str, str]:
    """The columns and one row's placeholders of the INSERT, for this connection's vendor."""
    fields = _insert_fields()
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * (len(fields) + 1))
    if connection.vendor == "postgresql":
        # The search document, computed here once (the trigger only covers other insert paths).
        return columns + ", canonical, search", placeholders + ", to_tsvector('simple'::regconfig, %s)"
    return columns + ", canonical", placeholders


def _insert_params(values: dict[str, Any], canonical: bytes, connection) -> list[Any]:
    params = [field.get_db_prep_save(values[field.attname], connection) for field in _insert_fields()]
    params.append(canonical)
    if connection.vendor == "postgresql":
        params.append(
            " ".join(
                (values["action"], values["target_label"], values["actor_label"], json.dumps(values["data"]))
            )
        )
    return params


def _inserted(event_id: int, values: dict[str, Any], canonical: bytes, connection) -> AuditEvent:
    event = AuditEvent(id=event_id, canonical=canonical, **values)
    event._state.adding = False
    event._state.db = connection.alias
    return event


@lru_cache(maxsize=1)
def _insert_fields() -> tuple:
    return tuple(AuditEvent._meta.get_field(name) for name in CONTENT_COLUMNS)


def denials_record(*, decisions: Iterable[Any]) -> list[AuditEvent]:
    """Record refused sensitive actions, once per action and target, in their own transaction."""
    seen: set[tuple] = set()
    events = []
    with transaction.atomic():
        for decision in decisions:
            target = decision.target
            key = (decision.action, type(target), getattr(target, "pk", None))
            if key in seen:
                continue
            seen.add(key)
            actor = (
                get_user_model().objects.filter(pk=decision.actor_id).first() if decision.actor_id else None
            )
            events.append(
                audit_event_record(
                    action=LedgerEvent.ACCESS_DENIED,
                    actor=actor,
                    target=target if isinstance(target, models.Model) and target.pk else None,
                    organization_id=decision.organization_id or getattr(actor, "organization_id", None),
                    workspace_id=decision.workspace_id,
                    outcome=Outcome.DENIED,
                    data={
                        "action": decision.action,
                        "reasons": list(decision.reasons),
                        "policies": list(decision.policies),
                    },
                )
            )
    return events


def diff_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return ``{field: {"before": old, "after": new}}`` for the fields whose values differ."""
    return {
        name: {"before": before.get(name), "after": after.get(name)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }
