"""Background work of evidence orders: each task calls the service of its name in ``orders``.

The registered names stay those of the tasks' first home (``audit.tasks.…``), so that messages
already queued under them are still delivered."""

from __future__ import annotations

import logging

from audit.evidence import orders
from governance.core.context import ActorContext, bind_context
from governance.core.jobs import shared_task

logger = logging.getLogger(__name__)


# acks_late + reject_on_worker_lost: a worker killed mid-build leaves the message unacknowledged,
# so the broker delivers it again and another worker builds the package from scratch.
@shared_task(
    name="audit.tasks.evidence_order_build",
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=2,
)
def evidence_order_build(self, order_id: int) -> str:
    """Build the package of one evidence order; retry unexpected errors a bounded number of times."""
    with bind_context(ActorContext()):
        try:
            state = orders.evidence_order_build(order_id=order_id)
        except Exception as error:
            logger.exception("Evidence order %s: the build failed", order_id)
            if self.request.retries >= self.max_retries:
                orders.evidence_order_fail(
                    order_id=order_id,
                    message=f"The build failed {self.request.retries + 1} times ({type(error).__name__}); "
                    "the details are in the worker's log. Order the package again or ask an operator.",
                )
                return "failed"
            raise self.retry(exc=error, countdown=30 * (self.request.retries + 1)) from None
    if state == "busy":
        # Another worker holds the order's build lock (a duplicate delivery, or the session of a
        # killed worker the database has not closed yet): look again later; it ends either way.
        raise self.retry(countdown=30, max_retries=None)
    return state


@shared_task(name="audit.tasks.evidence_orders_expire", ignore_result=True)
def evidence_orders_expire() -> int:
    """Beat: expire evidence packages past their retention and delete their files."""
    with bind_context(ActorContext()):
        return orders.evidence_orders_expire()
