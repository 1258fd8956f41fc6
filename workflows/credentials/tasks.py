"""Background work of the secrets store: the incident runbook and the end of grace periods."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True)
def credential_runbook_run(runbook_id: int) -> str:
    """Work through the incident runbook; a restarted worker resumes at the next item."""
    from workflows.credentials.services import credential_runbook_advance

    return credential_runbook_advance(runbook_id=runbook_id).status


@shared_task
def credential_versions_expire_task() -> int:
    """Beat: revoke credential versions whose grace period is over, erasing their values."""
    from workflows.credentials.services import credential_versions_expire

    return credential_versions_expire()
