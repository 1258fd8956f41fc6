"""Background work of the ledger."""

from __future__ import annotations

from celery import shared_task

from audit.sealing import ledger_seal as seal_pass


@shared_task(name="audit.tasks.ledger_seal", ignore_result=True)
def ledger_seal() -> int:
    """One sealing pass (Celery beat runs it every second); returns how many events it sealed."""
    return seal_pass().sealed
