"""Background work of the SIEM export: the beat sends one pump per sink; each pump leases its
sink, so duplicate or overlapping deliveries are harmless."""

from __future__ import annotations

from audit.siem import pump
from audit.siem.models import Sink, SinkStatus
from governance.core.context import ActorContext, bind_context
from governance.core.jobs import shared_task


@shared_task(name="audit.siem.tasks.siem_pumps_dispatch", ignore_result=True)
def siem_pumps_dispatch() -> int:
    """Beat: send a pump for every sink that is delivering or retrying."""
    ids = list(
        Sink.objects.filter(status__in=[SinkStatus.ACTIVE, SinkStatus.FAILING]).values_list("pk", flat=True)
    )
    for sink_id in ids:
        sink_pump.delay(sink_id)
    return len(ids)


# acks_late + reject_on_worker_lost: a worker killed mid-batch leaves its message to another; the
# cursor had not moved, the lease expires, and the batch is sent again (never skipped).
@shared_task(
    name="audit.siem.tasks.sink_pump", ignore_result=True, acks_late=True, reject_on_worker_lost=True
)
def sink_pump(sink_id: int) -> int:
    """Deliver one sink's pending events (``pump.sink_pump``); returns how many were delivered."""
    with bind_context(ActorContext()):
        return pump.sink_pump(sink_id=sink_id).delivered
