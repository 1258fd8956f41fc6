"""Background work of the key hierarchy: data key rotations, resumable and bounded per run."""

from __future__ import annotations

import time

from django.conf import settings

from governance.core.jobs import shared_task
from governance.core.locks import LockClass, advisory_lock
from governance.crypto.models import RotationJob, RotationStatus
from governance.crypto.services import rotation_job_advance

RUN_SECONDS = 50  # one task run's budget; the job re-queues itself to go on


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=None)
def rotation_job_run(job_id: int) -> str:
    """Advance a rotation for up to RUN_SECONDS, then queue the next run (or let the beat resume it).

    Runs of the same job never overlap: a PostgreSQL advisory lock on the job id guards them."""
    with advisory_lock(LockClass.KEY_ROTATION, job_id) as taken:
        if not taken:
            return "busy"
        # In the quick start (tasks run eagerly, no beat to resume) the job runs to its end.
        budget = float("inf") if settings.CELERY_TASK_ALWAYS_EAGER else RUN_SECONDS
        deadline = time.monotonic() + budget
        job = RotationJob.objects.get(pk=job_id)
        while job.status == RotationStatus.RUNNING and time.monotonic() < deadline:
            before = job.done
            job = rotation_job_advance(job_id=job_id, max_batches=25)
            if job.status == RotationStatus.RUNNING and job.done == before:
                job = rotation_job_advance(job_id=job_id)  # nothing left to move: settle or finish
                break
    if job.status == RotationStatus.RUNNING and not settings.CELERY_TASK_ALWAYS_EAGER:
        rotation_job_run.apply_async((job_id,), countdown=5)
    return job.status


@shared_task
def rotation_jobs_resume() -> int:
    """Beat: pick up running jobs whose worker died or that wait for their settle time."""
    running = list(RotationJob.objects.filter(status=RotationStatus.RUNNING).values_list("pk", flat=True))
    for job_id in running:
        rotation_job_run.delay(job_id)
    return len(running)
