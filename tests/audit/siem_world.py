"""SIEM sinks and dead letters in the test world (own and foreign organisation), for the admin
matrix: made directly, as the pump and the services would leave them."""

from __future__ import annotations

from audit.siem.models import DeadLetter, Sink, SinkCursor


def siem_objects_of(world) -> dict[str, dict[str, object]]:
    made = getattr(world, "siem_objects", None)
    if made is not None:
        return made
    made = {"siem.sink": {}, "siem.deadletter": {}}
    for scope, organization in (("own", world.org), ("foreign", world.foreign_org)):
        sink = Sink.objects.create(
            organization=organization, name=f"{scope} SIEM", kind="elastic",
            endpoint="https://siem.example.com:9200",
        )  # fmt: skip
        SinkCursor.objects.create(sink=sink)
        made["siem.sink"][scope] = sink
        made["siem.deadletter"][scope] = DeadLetter.objects.create(
            sink=sink, organization=organization, first_sequence=7, last_sequence=9, attempts=8,
            error="siem.example.com answered 503.",
        )  # fmt: skip
    world.siem_objects = made
    return made
