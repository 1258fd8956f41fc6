"""The SIEM export's ledger events: every sink change, pause, dead letter and replay."""

from audit.events import Category, EventCode


class SiemEvent(EventCode):
    """Sinks (docs/siem.md)."""

    SINK_CREATED = "siem.sink_created", Category.ADMIN
    SINK_UPDATED = "siem.sink_updated", Category.ADMIN
    SINK_SECRET_SET = "siem.sink_secret_set", Category.ADMIN
    SINK_ENABLED = "siem.sink_enabled", Category.ADMIN
    SINK_DISABLED = "siem.sink_disabled", Category.ADMIN
    SINK_PAUSED = "siem.sink_paused", Category.SYSTEM
    SINK_FAILING = "siem.sink_failing", Category.SYSTEM
    SINK_RECOVERED = "siem.sink_recovered", Category.SYSTEM
    DEAD_LETTERED = "siem.dead_lettered", Category.SYSTEM
    DEAD_LETTER_REPLAY_REQUESTED = "siem.dead_letter_replay_requested", Category.ADMIN
    DEAD_LETTER_REPLAYED = "siem.dead_letter_replayed", Category.SYSTEM
    DEAD_LETTER_ACKNOWLEDGED = "siem.dead_letter_acknowledged", Category.ADMIN
