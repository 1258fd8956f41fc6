"""Background work of the secrets store: the incident runbook and the end of grace periods.

The registered names stay those of the tasks' first home (``workflows.tasks.…``), so that a
runbook message queued or redelivered across an upgrade is still run: nothing else resumes a
runbook, and a new one is refused while one is running."""

from __future__ import annotations

from governance.core.jobs import shared_task
from workflows.credentials import services


@shared_task(name="workflows.tasks.credential_runbook_run", acks_late=True, reject_on_worker_lost=True)
def credential_runbook_advance(runbook_id: int) -> str:
    """Work through the incident runbook; a restarted worker resumes at the next item."""
    return services.credential_runbook_advance(runbook_id=runbook_id).status


@shared_task(name="workflows.tasks.credential_versions_expire_task")
def credential_versions_expire() -> int:
    """Beat: revoke credential versions whose grace period is over, erasing their values."""
    return services.credential_versions_expire()
