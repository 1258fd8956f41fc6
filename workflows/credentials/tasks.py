"""Background work of the secrets store: the incident runbook and the end of grace periods."""

from __future__ import annotations

from celery import shared_task

from workflows.credentials import services


@shared_task(name="workflows.credential_runbook_advance", acks_late=True, reject_on_worker_lost=True)
def credential_runbook_advance(runbook_id: int) -> str:
    """Work through the incident runbook; a restarted worker resumes at the next item."""
    return services.credential_runbook_advance(runbook_id=runbook_id).status


@shared_task(name="workflows.credential_versions_expire")
def credential_versions_expire() -> int:
    """Beat: revoke credential versions whose grace period is over, erasing their values."""
    return services.credential_versions_expire()
