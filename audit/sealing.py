"""The sealer: the single logical writer that orders committed events and hashes them.

Requests insert events unsealed, in their own transactions, without touching any shared row
(appends never queue behind each other). The sealer, under a lock on the one ``LedgerState``
row, takes every committed event that has no sequence yet, in id order, and gives them the
next sequence numbers, their leaf hashes (RFC 9162) and chain hashes; then, at most once a
second, it signs a new tree head.

Why no committed event is ever skipped: the sealer selects by ``sequence IS NULL``, not by an
id watermark. A transaction that inserted an event with a low id but commits after a sealing
pass simply finds its event unsealed by the next pass and gets the next free sequence number.
Sequence numbers therefore follow sealing order, which is what the tree commits to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit import merkle
from audit.canonical import canonical_bytes
from audit.events import LedgerEvent
from audit.models import AuditEvent, LedgerState, MerkleTile, RowChange, SignedTreeHead
from audit.proofs import sealed_leaves
from audit.signing import TreeHeadStatement, key_id_of, load_signing_key, sign_statement
from audit.triggers import CAPTURE_PARTS, may_cover, table_target_type

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SealResult:
    """What one sealing pass did."""

    sealed: int
    tree_size: int
    row_changes: int
    head: SignedTreeHead | None


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    """Per-event chain: SHA-256(previous chain hash ‖ leaf hash); the first event chains to b''."""
    return hashlib.sha256(previous + leaf).digest()


def _lock_state() -> LedgerState:
    LedgerState.objects.get_or_create(pk=1)
    return LedgerState.objects.select_for_update().get(pk=1)


def _service_events_of(transaction_ids: set[int]) -> tuple[dict, dict]:
    """What the service events of these transactions name, each as (transaction, target type,
    pk) → the first event naming it: their targets, and their targets plus ``data.covers``
    (whose ``"table:column=value"`` entries are keyed (transaction, table, "column=value"))."""
    targets: dict[tuple[int, str, str], int] = {}
    named: dict[tuple[int, str, str], int] = {}
    if not transaction_ids:
        return targets, named
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, transaction_id, action, target_type, target_id, data -> 'covers' FROM audit_auditevent "
            "WHERE transaction_id = ANY(%s) AND action <> %s ORDER BY id",
            [sorted(transaction_ids), str(LedgerEvent.DB_ROW_CHANGED)],
        )
        for event_id, transaction_id, action, target_type, target_id, covers in cursor.fetchall():
            if isinstance(covers, str):  # a driver that hands jsonb back as text
                covers = json.loads(covers)
            if target_type and target_id:
                targets.setdefault((transaction_id, target_type, target_id), event_id)
                named.setdefault((transaction_id, target_type, target_id), event_id)
            for row in covers if isinstance(covers, list) else ():
                if isinstance(row, str) and ":" in row:
                    table, pk = row.split(":", 1)
                    if not may_cover(action, table):
                        continue  # the settle function would refuse the link
                    if "=" in pk:  # "table:column=value": the rows written with that value
                        column, value = pk.split("=", 1)
                        named.setdefault((transaction_id, table, f"{column}={value}"), event_id)
                    else:
                        named.setdefault((transaction_id, table_target_type(table), pk), event_id)
    return targets, named


def _covering_event(change: RowChange, targets: dict, named: dict) -> int | None:
    """The service event that covers ``change`` by the rule of ``audit_rowchange_settle``."""
    covering = named.get((change.transaction_id, table_target_type(change.table_name), change.row_id))
    if covering is not None:
        return covering
    after, before = change.new or change.old or {}, change.old or change.new or {}
    for column, value in after.items():
        if value is not None and not isinstance(value, dict | list | bool):
            covering = named.get((change.transaction_id, change.table_name, f"{column}={value}"))
            if covering is not None:
                return covering
    for table, column, parent in CAPTURE_PARTS:
        if (
            table == change.table_name
            and after.get(column) is not None
            and after.get(column) == before.get(column)
        ):
            covering = targets.get((change.transaction_id, parent, str(after[column])))
            if covering is not None:
                return covering
    return None


def _row_change_event(change: RowChange) -> AuditEvent:
    """The ``db.row_changed`` event of a capture that no service event of its transaction names."""
    values = {
        "uid": uuid.uuid4(),
        "occurred_at": change.occurred_at,
        "category": "system",
        "action": LedgerEvent.DB_ROW_CHANGED,
        "outcome": "success",
        "actor_type": "system",
        "actor_id": None,
        "actor_label": (change.actor_hint or f"db:{change.db_user}")[:254],
        "organization_id": None,
        "workspace_id": None,
        "target_type": change.table_name,
        "target_id": change.row_id,
        "target_label": f"{change.operation} {change.table_name} {change.row_id}"[:254],
        "request_id": "",
        "ip": None,
        "user_agent": (change.application or "")[:300],
        "data": {
            "operation": change.operation,
            "before": change.old,
            "after": change.new,
            "transaction_id": change.transaction_id,
            "db_user": change.db_user,
            "capture": change.id,
        },
    }
    return AuditEvent(canonical=canonical_bytes(values), **values)


def _settle(links: list[tuple[int, int]]) -> set[int]:
    """Link captures to events through ``audit_rowchange_settle``; return the captures it linked."""
    if not links:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT audit_rowchange_settle(%s::bigint[], %s::bigint[])",
            [[capture for capture, _ in links], [event for _, event in links]],
        )
        return {row[0] for row in cursor.fetchall()}


def _row_change_events(limit: int) -> int:
    """Reconcile captured row changes with the ledger; return how many captures were settled.

    A capture whose row a service event of the same transaction names is linked to that event
    (it adds nothing the event does not say, and stays in ``audit_rowchange`` as its evidence).
    Every other capture becomes a ``db.row_changed`` event and is linked to it. The links are
    written by ``audit_rowchange_settle``, which refuses any link the rule above does not allow;
    a capture refused there becomes a ``db.row_changed`` event too, so that none stays queued.
    """
    if connection.vendor != "postgresql":
        return 0  # the capture triggers exist on PostgreSQL only
    changes = list(RowChange.objects.filter(event__isnull=True).order_by("id")[:limit])
    if not changes:
        return 0
    targets, named = _service_events_of(
        {change.transaction_id for change in changes if change.transaction_id}
    )
    covered: list[tuple[int, int]] = []
    uncovered: list[RowChange] = []
    for change in changes:
        event_id = _covering_event(change, targets, named)
        if event_id is None:
            uncovered.append(change)
        else:
            covered.append((change.id, event_id))
    refused = {capture for capture, _ in covered} - _settle(covered)
    uncovered += [change for change in changes if change.id in refused]
    recorded = _insert_row_change_events(uncovered)
    links = [(change.id, event.pk) for change, event in recorded]
    unsettled = len(links) - len(_settle(links))
    unrecorded = len(uncovered) - len(recorded)
    if refused or unsettled or unrecorded:
        logger.error(
            "Ledger sealer: %d captured row changes were not covered by the event that names them, "
            "%d could not be linked to their db.row_changed event, %d were refused a db.row_changed "
            "event by the database and stay queued.",
            len(refused),
            unsettled,
            unrecorded,
        )
    return len(changes)


def _insert_row_change_events(changes: list[RowChange]) -> list[tuple[RowChange, AuditEvent]]:
    """Insert the db.row_changed events of ``changes``. The database accepts one only when it
    says exactly what its capture says (``POSTGRES_ROW_CHANGED_GUARD``): should it refuse one, the
    others are inserted one by one, and the refused capture stays queued (and is logged) rather
    than stopping the sealer."""
    events = [_row_change_event(change) for change in changes]
    try:
        with transaction.atomic():
            AuditEvent.objects.bulk_create(events, batch_size=2000)
        return list(zip(changes, events, strict=True))
    except DatabaseError:
        logger.exception("Ledger sealer: the database refused a db.row_changed event; inserting one by one.")
    recorded = []
    for change in changes:
        event = _row_change_event(change)
        try:
            with transaction.atomic():
                event.save(force_insert=True)
        except DatabaseError:
            logger.error("Ledger sealer: capture %s was refused its db.row_changed event.", change.id)
            continue
        recorded.append((change, event))
    return recorded


def _write_seals(rows: list[tuple[int, int, bytes, bytes]], sealed_at) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE audit_auditevent AS e SET sequence = v.seq, leaf_hash = v.leaf, "
                "chain_hash = v.chain, sealed_at = %s "
                "FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::bigint[]) AS seq, "
                "unnest(%s::bytea[]) AS leaf, unnest(%s::bytea[]) AS chain) AS v WHERE e.id = v.id",
                [
                    sealed_at,
                    [r[0] for r in rows],
                    [r[1] for r in rows],
                    [r[2] for r in rows],
                    [r[3] for r in rows],
                ],
            )
    else:
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE audit_auditevent SET sequence = %s, leaf_hash = %s, chain_hash = %s, sealed_at = %s "
                "WHERE id = %s",
                [(seq, leaf, chain, sealed_at, event_id) for event_id, seq, leaf, chain in rows],
            )


def _open_tile_leaves(tree_size: int) -> list[bytes]:
    """Leaf hashes already sealed in the tile that is not complete yet."""
    start = tree_size - tree_size % MerkleTile.TILE_SIZE
    return sealed_leaves(start + 1, tree_size) if tree_size > start else []


def _sign_head(state: LedgerState, frontier: merkle.Frontier, *, force: bool) -> SignedTreeHead | None:
    last = SignedTreeHead.objects.order_by("-number").first()
    if last is not None and last.tree_size == state.tree_size:
        return None
    now = timezone.now()
    interval = timedelta(seconds=settings.LEDGER_HEAD_INTERVAL_SECONDS)
    if not force and last is not None and now - last.issued_at < interval:
        return None
    if state.tree_size == 0:
        return None
    key = load_signing_key()
    statement = TreeHeadStatement(
        number=(last.number + 1) if last else 1,
        tree_size=state.tree_size,
        root_hash=frontier.root(),
        issued_at=now,
        key_id=key_id_of(key.public_key()),
    )
    return SignedTreeHead.objects.create(
        number=statement.number,
        tree_size=statement.tree_size,
        root_hash=statement.root_hash,
        issued_at=statement.issued_at,
        key_id=statement.key_id,
        signature=sign_statement(statement, key),
    )


def ledger_seal(*, batch_size: int | None = None, sign: bool = True, force_head: bool = False) -> SealResult:
    """Seal up to ``batch_size`` committed events (and queued row changes); maybe sign a head."""
    limit = batch_size or settings.LEDGER_SEAL_BATCH
    with transaction.atomic():
        state = _lock_state()
        row_changes = _row_change_events(limit)
        pending = list(
            AuditEvent.objects.filter(sequence__isnull=True)
            .order_by("id")
            .values_list("id", "canonical")[:limit]
        )
        frontier = merkle.Frontier.from_json(state.frontier) if state.frontier else merkle.Frontier()
        if frontier.size != state.tree_size:
            raise RuntimeError(
                "Ledger state is inconsistent: frontier and tree size differ; run audit_verify."
            )
        chain = bytes(state.chain_head)
        seals = []
        tile_leaves = _open_tile_leaves(state.tree_size) if pending else []
        tiles = []
        for event_id, canonical in pending:
            leaf = merkle.leaf_hash(bytes(canonical))
            chain = chain_hash(chain, leaf)
            frontier.append(leaf)
            seals.append((event_id, frontier.size, leaf, chain))
            tile_leaves.append(leaf)
            if frontier.size % MerkleTile.TILE_SIZE == 0:
                tiles.append(
                    MerkleTile(
                        index=frontier.size // MerkleTile.TILE_SIZE - 1,
                        hash=merkle.root_from_leaf_hashes(tile_leaves),
                    )
                )
                tile_leaves = []
        if seals:
            sealed_at = timezone.now()
            _write_seals(seals, sealed_at)
            MerkleTile.objects.bulk_create(tiles)
            state.tree_size = frontier.size
            state.frontier = frontier.to_json()
            state.chain_head = chain
            state.sealed_at = sealed_at
            state.save(update_fields=["tree_size", "frontier", "chain_head", "sealed_at"])
        head = _sign_head(state, frontier, force=force_head) if sign else None
    return SealResult(sealed=len(seals), tree_size=state.tree_size, row_changes=row_changes, head=head)


def ledger_seal_all(*, sign: bool = True) -> SealResult:
    """Seal until nothing is pending (used by commands and tests); signs one head at the end."""
    total = changes = 0
    while True:
        result = ledger_seal(sign=False)
        total += result.sealed
        changes += result.row_changes
        if result.sealed == 0 and result.row_changes == 0:
            break
    head = None
    if sign:
        head = ledger_seal(sign=True, force_head=True).head
    state = LedgerState.objects.get(pk=1)
    return SealResult(sealed=total, tree_size=state.tree_size, row_changes=changes, head=head)


def seal_loop(*, interval: float = 1.0, stop_after: float | None = None) -> None:
    """Seal every ``interval`` seconds (for ``audit_seal --loop``); signs heads as work arrives."""
    started = time.monotonic()
    while stop_after is None or time.monotonic() - started < stop_after:
        result = ledger_seal()
        if result.sealed == 0:
            time.sleep(interval)
