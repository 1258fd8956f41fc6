"""Session-level PostgreSQL advisory locks: one run of a job at a time, across workers.

The server releases such a lock by itself when a killed worker's connection drops, so a crash
never leaves a job locked. Each kind of job has its own lock class (the first key), apart from
other kinds' ids. Other databases (the quick start's SQLite) have one process: always granted."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import IntEnum

from django.db import connection


class LockClass(IntEnum):
    """The first key of each kind of job's advisory locks (three ASCII letters)."""

    EVIDENCE_BUILD = 0x657669  # "evi"
    KEY_ROTATION = 0x6B6579  # "key"
    LEDGER_PRUNE = 0x70726E  # "prn"


@contextlib.contextmanager
def advisory_lock(lock_class: LockClass, key: int) -> Iterator[bool]:
    """Try to take the lock of ``key`` without waiting; yield whether it was taken, and release it
    on leaving when it was."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [int(lock_class), key])
        taken = cursor.fetchone()[0]
    try:
        yield taken
    finally:
        if taken:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [int(lock_class), key])
