"""Cron schedules: checked and read by the parser the scheduler uses (``cronsim``), in the
workspace's time zone.

Daylight-saving changes follow Vixie cron, as cronsim does: a time that does not exist on the
day the clocks go forward runs at the first moment after the gap; a time that occurs twice when
they go back runs once.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from django.utils import timezone

FIELDS = ("minute", "hour", "day of month", "month", "day of week")
MAX_CRON_LENGTH = 200


def cron_problem(expression: str) -> str | None:
    """What is wrong with ``expression`` in a sentence, or None when it is a valid schedule."""
    expression = (expression or "").strip()
    if not expression:
        return "A schedule needs a cron expression, e.g. 0 6 * * 1-5 (06:00 on weekdays)."
    if len(expression) > MAX_CRON_LENGTH:
        return f"Too long: at most {MAX_CRON_LENGTH} characters."
    fields = expression.split()
    if len(fields) != len(FIELDS):
        return (
            f"A cron expression has five fields ({', '.join(FIELDS)}); this one has {len(fields)}. "
            "e.g. 0 6 * * 1-5 runs at 06:00 on weekdays."
        )
    try:
        CronSim(expression, timezone.now())
    except CronSimError as error:
        return f"Not a valid schedule: {str(error).rstrip('.').lower()} (fields: {', '.join(FIELDS)})."
    except (ValueError, OverflowError):
        return "Not a valid schedule."
    return None


def cron_next_runs(
    expression: str, time_zone: str, *, count: int = 5, after: datetime | None = None
) -> list[datetime]:
    """The next ``count`` run times of a valid ``expression`` in ``time_zone`` (aware datetimes in
    that zone); an empty list for an invalid expression or an unknown zone."""
    if cron_problem(expression) is not None:
        return []
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return []
    start = (after or timezone.now()).astimezone(zone)
    runs = []
    iterator = CronSim(expression.strip(), start)
    for moment in iterator:
        runs.append(moment)
        if len(runs) == count:
            break
    return runs
