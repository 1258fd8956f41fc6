"""Background work of the ledger: sealing (evidence orders have theirs in ``audit.evidence.tasks``)."""

from __future__ import annotations

from audit import sealing
from governance.core.jobs import shared_task


@shared_task(name="audit.tasks.ledger_seal", ignore_result=True)
def ledger_seal() -> int:
    """One sealing pass (Celery beat runs it every second); returns how many events it sealed."""
    return sealing.ledger_seal().sealed
