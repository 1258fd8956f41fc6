"""The pump: delivers a sink's share of the ledger in ledger order, losing nothing.

- **Cursor.** A sink's position is the last ledger sequence it has fully acknowledged. The pump
  reads only sealed events up to the latest signed tree head (a gap-free range), in sequence
  order, those of the sink's organisation.
- **Lease.** One pump per sink at a time: a pump first takes the cursor's lease (an UPDATE that
  succeeds only when the lease is free, expired or already its own). A duplicate Celery
  delivery finds the lease taken and does nothing; a killed worker's lease expires and the next
  pump starts again from the cursor.
- **Compare-and-set.** The position moves only after the sink acknowledged the whole batch, by an
  UPDATE that names the old position and the pump's own lease: a pump that lost its lease can
  never move it (its batch is sent again by the new holder: at least once, never skipped).
- **Failures.** 429, 5xx, timeouts and unreachable sinks retry with jittered exponential backoff;
  413 and refusals of a whole batch are bisected down to the event refused; 401/403, an
  untrusted certificate or an endpoint the boundary refuses pause the sink. An event refused on its own, or a batch still failing after ``SIEM_MAX_FAILURES``
  attempts, becomes a dead letter (with its ledger event) and the cursor moves past it; an
  administrator replays or acknowledges it. Nothing is skipped silently.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.models import AuditEvent, SignedTreeHead
from audit.siem import services
from audit.siem.formats import ExportedEvent
from audit.siem.models import DeadLetter, DeadLetterState, Sink, SinkCursor, SinkStatus
from audit.siem.transports import (
    TRANSPORTS,
    MisconfiguredError,
    RejectedError,
    RetryLaterError,
    SendError,
    TooLargeError,
    Transport,
)

logger = logging.getLogger(__name__)

# How far past the cursor one read looks for the organisation's events (bounds the scan).
SCAN_WINDOW = 50_000
EVENT_COLUMNS = (
    "uid", "sequence", "leaf_hash", "occurred_at", "category", "action", "outcome", "actor_type",
    "actor_id", "actor_label", "organization_id", "workspace_id", "target_type", "target_id",
    "target_label", "request_id", "ip", "user_agent", "data",
)  # fmt: skip

TransportFactory = Callable[[Sink, str], Transport]


@dataclass
class PumpResult:
    """What one pump run did."""

    leased: bool = False
    delivered: int = 0
    batches: int = 0
    dead_lettered: int = 0
    replayed: int = 0
    position: int = 0
    stopped: str = ""
    errors: list[str] = field(default_factory=list)


def _lease_seconds() -> int:
    return int(getattr(settings, "SIEM_LEASE_SECONDS", 120))


def _max_failures() -> int:
    return int(getattr(settings, "SIEM_MAX_FAILURES", 8))


def backoff_seconds(failures: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with equal jitter: uniform between half and all of
    min(cap, base · 2^(failures-1)), so that sinks failing together do not retry together."""
    base = float(getattr(settings, "SIEM_BACKOFF_BASE_SECONDS", 2))
    cap = float(getattr(settings, "SIEM_BACKOFF_CAP_SECONDS", 300))
    ceiling = min(cap, base * 2 ** max(0, failures - 1))
    return (rng or random.SystemRandom()).uniform(ceiling / 2, ceiling)


def signed_tree_size() -> int:
    """The size of the latest signed tree head: the pump never reads past it."""
    size = SignedTreeHead.objects.order_by("-number").values_list("tree_size", flat=True).first()
    return int(size or 0)


def _exported(row: dict, tree_size: int) -> ExportedEvent:
    leaf = row.pop("leaf_hash")
    return ExportedEvent(leaf_hash=bytes(leaf).hex() if leaf is not None else "", tree_size=tree_size,
                         **{**row, "uid": str(row["uid"]), "ip": row["ip"] or None})  # fmt: skip


def events_between(sink: Sink, after: int, upto: int, limit: int, tree_size: int) -> list[ExportedEvent]:
    """The sink's organisation's sealed events with ``after`` < sequence ≤ ``upto``, in order."""
    rows = (
        AuditEvent.objects.filter(
            organization_id=sink.organization_id, sequence__gt=after, sequence__lte=upto
        )
        .order_by("sequence")
        .values(*EVENT_COLUMNS)[:limit]
    )
    return [_exported(dict(row), tree_size) for row in rows]


def lease_take(sink_id: int, worker: str) -> int | None:
    """Take the sink's lease; its position, or None when another pump holds it or a backoff runs."""
    now = timezone.now()
    taken = SinkCursor.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=worker),
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        sink_id=sink_id,
    ).update(lease_owner=worker, lease_until=now + timedelta(seconds=_lease_seconds()))
    if not taken:
        return None
    return SinkCursor.objects.filter(sink_id=sink_id).values_list("position", flat=True).get()


def lease_release(sink_id: int, worker: str) -> None:
    SinkCursor.objects.filter(sink_id=sink_id, lease_owner=worker).update(lease_owner="", lease_until=None)


def default_transport(sink: Sink, secret: str) -> Transport:
    return TRANSPORTS[sink.kind](sink, secret=secret)


def deliver(transport: Transport, events: Sequence[ExportedEvent]) -> dict[int, str]:
    """Send ``events`` in the transport's batch size; the sequences refused for good, with why.

    413 and whole-batch refusals are bisected to the event refused; ``RetryLaterError`` and
    ``MisconfiguredError`` propagate (the caller keeps the cursor where it is)."""
    refused: dict[int, str] = {}
    for start in range(0, len(events), transport.max_batch):
        refused.update(_bisect(transport, events[start : start + transport.max_batch]))
    return refused


def _bisect(transport: Transport, events: Sequence[ExportedEvent]) -> dict[int, str]:
    try:
        return transport.send(events)
    except (TooLargeError, RejectedError) as error:
        if len(events) == 1:
            return {events[0].sequence: str(error)}
        middle = len(events) // 2
        return {**_bisect(transport, events[:middle]), **_bisect(transport, events[middle:])}


def sink_pump(
    *,
    sink_id: int,
    worker: str | None = None,
    max_batches: int | None = None,
    transport_factory: TransportFactory | None = None,
) -> PumpResult:
    """Deliver what the sink has not acknowledged yet, up to the latest signed tree head."""
    worker = worker or uuid.uuid4().hex
    result = PumpResult()
    sink = Sink.objects.select_related("organization").filter(pk=sink_id).first()
    if sink is None or sink.status in (SinkStatus.PAUSED, SinkStatus.DISABLED):
        result.stopped = "inactive"
        return result
    position = lease_take(sink_id, worker)
    if position is None:
        result.stopped = "busy"
        return result
    result.leased, result.position = True, position
    try:
        transport = (transport_factory or default_transport)(sink, services.sink_secret(sink))
        _replay(sink, transport, result)
        _advance(sink, transport, worker, result, max_batches)
    finally:
        lease_release(sink_id, worker)
    return result


def _replay(sink: Sink, transport: Transport, result: PumpResult) -> None:
    """Send the dead letters an administrator asked to replay, by ledger sequence."""
    letters = DeadLetter.objects.filter(sink=sink, state=DeadLetterState.REPLAY_REQUESTED).order_by("id")
    tree_size = signed_tree_size()
    for letter in letters:
        events = events_between(
            sink, letter.first_sequence - 1, letter.last_sequence, letter.count, tree_size
        )
        try:
            refused = deliver(transport, events)
        except SendError as error:
            services.dead_letter_replayed(letter_id=letter.pk, delivered=False, error=str(error))
            continue
        if refused:
            services.dead_letter_replayed(
                letter_id=letter.pk, delivered=False, error=next(iter(refused.values()))
            )
        else:
            services.dead_letter_replayed(letter_id=letter.pk, delivered=True)
            result.replayed += len(events)


def _advance(sink: Sink, transport: Transport, worker: str, result: PumpResult, max_batches) -> None:
    position = result.position
    tree_size = signed_tree_size()
    while position < tree_size and (max_batches is None or result.batches < max_batches):
        window = min(tree_size, position + SCAN_WINDOW)
        events = events_between(sink, position, window, sink.batch_size, tree_size)
        upto = events[-1].sequence if len(events) == sink.batch_size else window
        try:
            refused = deliver(transport, events) if events else {}
        except MisconfiguredError as error:
            services.sink_status_set(sink_id=sink.pk, status=SinkStatus.PAUSED, message=str(error))
            result.stopped, result.errors = "paused", [*result.errors, str(error)]
            return
        except RetryLaterError as error:
            _failed(sink, worker, events, position, upto, str(error), result)
            return
        if not _commit(sink, worker, position, upto, refused, len(events)):
            result.stopped = "lost lease"
            return
        result.batches += 1
        result.delivered += len(events) - len(refused)
        result.dead_lettered += len(refused)
        position = result.position = upto
    if sink.status == SinkStatus.FAILING:
        services.sink_status_set(sink_id=sink.pk, status=SinkStatus.ACTIVE, message="")


def _commit(sink: Sink, worker: str, old: int, new: int, refused: dict[int, str], sent: int) -> bool:
    """Move the cursor from ``old`` to ``new`` (compare-and-set on position and lease) and record
    the refused events as dead letters, in one transaction; False when the lease was lost."""
    now = timezone.now()
    with transaction.atomic():
        moved = SinkCursor.objects.filter(sink_id=sink.pk, position=old, lease_owner=worker).update(
            position=new,
            lease_until=now + timedelta(seconds=_lease_seconds()),
            failures=0,
            next_attempt_at=None,
            last_error="",
            last_delivered_at=now if sent else F("last_delivered_at"),
            delivered=F("delivered") + (sent - len(refused)),
        )
        if not moved:
            return False
        for sequence, reason in sorted(refused.items()):
            services.dead_letter_create(
                sink=sink, first_sequence=sequence, last_sequence=sequence, attempts=1, error=reason
            )
    return True


def _failed(sink, worker, events, position, upto, message, result: PumpResult) -> None:
    """A batch that could not be delivered now: back off, or after ``SIEM_MAX_FAILURES``
    attempts dead-letter it and move on (with a ledger event either way)."""
    result.errors.append(message)
    cursor = SinkCursor.objects.get(sink_id=sink.pk)
    failures = cursor.failures + 1
    if failures >= _max_failures() and events:
        with transaction.atomic():
            moved = SinkCursor.objects.filter(sink_id=sink.pk, position=position, lease_owner=worker).update(
                position=upto, failures=0, next_attempt_at=None, last_error=message[:500]
            )
            if not moved:
                result.stopped = "lost lease"
                return
            services.dead_letter_create(
                sink=sink,
                first_sequence=events[0].sequence,
                last_sequence=events[-1].sequence,
                attempts=failures,
                error=message,
            )
        result.dead_lettered += len(events)
        result.position = upto
        result.stopped = "dead-lettered"
        return
    SinkCursor.objects.filter(sink_id=sink.pk, lease_owner=worker).update(
        failures=failures,
        next_attempt_at=timezone.now() + timedelta(seconds=backoff_seconds(failures)),
        last_error=message[:500],
    )
    services.sink_status_set(sink_id=sink.pk, status=SinkStatus.FAILING, message=message)
    result.stopped = "retrying"


def sink_lag(sink: Sink) -> tuple[int, float | None]:
    """(events, seconds) the sink is behind: the organisation's signed events past its cursor,
    and the age of the oldest of them (None when it is up to date)."""
    cursor = SinkCursor.objects.filter(sink_id=sink.pk).values_list("position", flat=True).first() or 0
    pending = AuditEvent.objects.filter(
        organization_id=sink.organization_id, sequence__gt=cursor, sequence__lte=signed_tree_size()
    )
    count = pending[:10_001].count()
    oldest = pending.order_by("sequence").values_list("occurred_at", flat=True).first()
    return count, (timezone.now() - oldest).total_seconds() if oldest else None
