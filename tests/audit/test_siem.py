"""SIEM sinks: OCSF and CEF records, the pump's guarantees (ledger order, lease, compare-and-set,
backoff, bisection, dead letters, replay by sequence) against contract servers on 127.0.0.1
reached through the network boundary, and the services' refusals (docs/siem.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from ocsf_emitter import _models as ocsf_models
from ocsf_emitter.validate import validate as ocsf_validate

from audit.models import AuditEvent
from audit.sealing import ledger_seal_all
from audit.services import audit_event_record
from audit.siem import formats, pump, services
from audit.siem.formats import ExportedEvent
from audit.siem.models import DeadLetter, DeadLetterState, Sink, SinkCursor, SinkSecret, SinkStatus
from governance.access.decision import AccessDenied
from tests.audit import siem_contracts
from tests.audit.siem_contracts import Contract
from tests.workflows.test_outbound import pki  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

TOKEN = "siem-token-7f3a9c1d2e"


# --- Records ---------------------------------------------------------------------------------------


def exported(action: str, *, outcome: str = "success", **overrides) -> ExportedEvent:
    values = {
        "uid": "8d1c7a4e-1111-4b2a-9c3d-0123456789ab",
        "sequence": 42,
        "leaf_hash": "ab" * 32,
        "tree_size": 50,
        "occurred_at": datetime(2026, 3, 1, 12, 30, 15, 123000, tzinfo=UTC),
        "category": "admin",
        "action": action,
        "outcome": outcome,
        "actor_type": "user",
        "actor_id": 7,
        "actor_label": "alice@acme.test",
        "organization_id": 1,
        "workspace_id": 2,
        "target_type": "accounts.user",
        "target_id": "9",
        "target_label": "bob@acme.test",
        "request_id": "req-1",
        "ip": "192.0.2.10",
        "user_agent": "Mozilla/5.0",
        "data": {"before": {"role": "viewer"}, "after": {"role": "owner"}},
    }
    return ExportedEvent(**{**values, **overrides})


OCSF_CASES = [
    ("login.succeeded", 3002, 1, "Authentication"),
    ("login.failed", 3002, 1, "Authentication"),
    ("auth.logout", 3002, 2, "Authentication"),
    ("sso.login", 3002, 1, "Authentication"),
    ("user.created", 3001, 1, "AccountChange"),
    ("user.deactivated", 3001, 5, "AccountChange"),
    ("mfa.reset", 3001, 11, "AccountChange"),
    ("grant.assigned", 3005, 1, "UserAccess"),
    ("membership.removed", 3005, 2, "UserAccess"),
    ("scim.group_created", 3006, 6, "GroupManagement"),
    ("scim.group_patched", 3006, 99, "GroupManagement"),
    ("halt.raised", 3004, 12, "EntityManagement"),
    ("workflow.deactivated", 3004, 11, "EntityManagement"),
    ("integration.created", 3004, 1, "EntityManagement"),
    ("db.row_changed", 3004, 3, "EntityManagement"),
    ("workflow.change.submitted", 6003, 3, "ApiActivity"),
    ("execution.started", 6003, 99, "ApiActivity"),
]


@pytest.mark.parametrize(("action", "class_uid", "activity", "model"), OCSF_CASES)
def test_ocsf_records_validate_against_the_pinned_schema(action, class_uid, activity, model):
    """Each mapped class validates against the generated models of OCSF 1.5.0 and its invariants
    (type_uid, category, class name, pinned version), and carries the ledger's coordinates."""
    record = formats.to_ocsf(exported(action, outcome="failed" if "failed" in action else "success"))
    assert (record["class_uid"], record["activity_id"]) == (class_uid, activity)
    parsed = getattr(ocsf_models, model).model_validate(record)
    ocsf_validate(parsed)
    assert record["metadata"]["version"] == formats.OCSF_VERSION == "1.5.0"
    assert record["unmapped"]["ledger"] == {
        "uid": "8d1c7a4e-1111-4b2a-9c3d-0123456789ab",
        "sequence": 42,
        "leaf_index": 41,
        "leaf_hash": "ab" * 32,
        "tree_size": 50,
    }


def test_an_ocsf_record_that_breaks_the_schema_is_caught():
    """The validation can fail: a record without its user is refused by the pinned models."""
    record = formats.to_ocsf(exported("login.succeeded"))
    del record["user"]
    with pytest.raises(Exception, match="user"):
        ocsf_models.Authentication.model_validate(record)


def test_cef_escapes_header_and_extension_characters():
    event = exported("login.failed", outcome="failed", actor_label="eve|=\\\nx", data={"why": "a=b"})
    line = formats.to_cef(event)
    assert line.startswith("CEF:0|Governance portal|Governance portal ledger|1|login.failed|login.failed|5|")
    assert "suser=eve|\\=\\\\\\nx " in line
    assert "\n" not in line
    assert "externalId=8d1c7a4e-1111-4b2a-9c3d-0123456789ab" in line
    assert "cs2Label=leafIndex cs2=41" in line
    assert "cs3=50" in line


def test_syslog_messages_are_rfc5424_with_octet_counting():
    event = exported("login.succeeded", user_agent="x\u202ey", data={"note": "\u0000 \ud800"})
    message = formats.syslog_message(event, "cef", hostname="portal host")
    head, _, body = message.partition(b"\xef\xbb\xbf")
    assert head.startswith(b"<110>1 2026-03-01T12:30:15.123000Z portalhost governance - login.succeeded ")
    assert b'[ledger@32473 uid="8d1c7a4e-1111-4b2a-9c3d-0123456789ab" sequence="42" leaf_index="41"' in head
    body.decode("utf-8")  # valid UTF-8, whatever the data held
    framed = formats.octet_counted(message)
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(rest) == len(message)


# --- The world's sinks ---------------------------------------------------------------------------


@pytest.fixture
def loopback(settings):
    settings.OUTBOUND_ALLOW_LIST = ["127.0.0.1"]
    settings.SIEM_BACKOFF_BASE_SECONDS = 0
    settings.SIEM_BACKOFF_CAP_SECONDS = 0
    return settings


@pytest.fixture
def receiver(pki):  # noqa: F811
    server = siem_contracts.https_server(pki)
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def record_events(organization, count: int, *, action: str = "workspace.updated", seal: bool = True):
    for index in range(count):
        with transaction.atomic():
            audit_event_record(action=action, actor=None, organization_id=organization.pk, data={"n": index})
    if seal:
        ledger_seal_all()


def org_uids(organization) -> list[str]:
    return sorted(
        str(uid)
        for uid in AuditEvent.objects.filter(
            organization_id=organization.pk, sequence__isnull=False
        ).values_list("uid", flat=True)
    )


def make_sink(world, pki, server, kind: str, *, path: str = "", **options) -> Sink:  # noqa: F811
    batch_size = options.pop("batch_size", 500)
    return services.sink_create(
        actor=world.users["platform_admin"],
        organization=world.org,
        name=f"{kind} sink",
        kind=kind,
        endpoint=f"https://127.0.0.1:{server.port}{path}",
        secret=TOKEN,
        options={"ca_pem": pki.ca_pem, **options},
        batch_size=batch_size,
    )


def pump_until_idle(sink: Sink, *, rounds: int = 10) -> pump.PumpResult:
    total = pump.PumpResult()
    for _ in range(rounds):
        result = pump.sink_pump(sink_id=sink.pk)
        total.delivered += result.delivered
        total.dead_lettered += result.dead_lettered
        total.replayed += result.replayed
        total.stopped = result.stopped
        if result.stopped or not result.batches:
            break
    return total


def position(sink: Sink) -> int:
    return SinkCursor.objects.get(sink=sink).position


def actions(prefix: str = "siem.") -> list[str]:
    return list(
        AuditEvent.objects.filter(action__startswith=prefix).order_by("id").values_list("action", flat=True)
    )


# --- Elastic / OpenSearch _bulk ------------------------------------------------------------------


def test_elastic_down_then_back_delivers_every_event_exactly_once(world, pki, loopback, receiver):  # noqa: F811
    """GIVEN a _bulk sink that answers 503 for a while WHEN the pump retries THEN nothing moves
    while it is down (the sink shows failing, with a ledger event) and once it is back every event
    of the organisation arrives exactly once, by id, in ledger order."""
    contract = Contract(token=TOKEN, down=503)
    siem_contracts.elastic(receiver, contract)
    sink = make_sink(world, pki, receiver, "elastic", batch_size=7)
    record_events(world.org, 20)
    record_events(world.foreign_org, 5)  # another organisation's events never reach this sink

    for _ in range(3):
        result = pump.sink_pump(sink_id=sink.pk)
        assert result.stopped == "retrying"
    assert position(sink) == 0
    sink.refresh_from_db()
    assert sink.status == SinkStatus.FAILING
    assert "503" in SinkCursor.objects.get(sink=sink).last_error
    assert actions().count("siem.sink_failing") == 1

    contract.down = None
    pump_until_idle(sink)
    ledger_seal_all()  # the sink's own events (failing, then active again) are exported too
    pump_until_idle(sink)
    assert contract.ids() == org_uids(world.org)
    assert set(contract.received.values()) == {1}
    sequences = [doc["unmapped"]["ledger"]["sequence"] for doc in contract.stored.values()]
    assert sequences == sorted(sequences)
    sink.refresh_from_db()
    assert sink.status == SinkStatus.ACTIVE
    assert all(doc["metadata"]["version"] == "1.5.0" for doc in contract.stored.values())


def test_a_409_counts_as_delivered_and_a_refused_item_becomes_a_dead_letter(world, pki, loopback, receiver):  # noqa: F811
    """GIVEN events already in the index (409) and one the mapping refuses (400) THEN the rest
    is delivered, the refused one is dead-lettered with a ledger event, the cursor moves on;
    a replay requested later sends it again by its sequence."""
    contract = Contract(token=TOKEN)
    siem_contracts.elastic(receiver, contract)
    sink = make_sink(world, pki, receiver, "elastic")
    record_events(world.org, 6)
    uids = org_uids(world.org)
    contract.stored[uids[0]] = {"already": True}
    refused_uid = uids[3]
    contract.refuse_ids.add(refused_uid)

    result = pump.sink_pump(sink_id=sink.pk)
    assert result.dead_lettered == 1
    letter = DeadLetter.objects.get(sink=sink)
    refused_sequence = AuditEvent.objects.get(uid=refused_uid).sequence
    assert (letter.first_sequence, letter.last_sequence, letter.state) == (
        refused_sequence, refused_sequence, DeadLetterState.OPEN,
    )  # fmt: skip
    assert "mapper" not in letter.error or "400" in letter.error
    assert position(sink) >= refused_sequence
    assert "siem.dead_lettered" in actions()
    assert refused_uid not in contract.stored

    with pytest.raises(ValidationError):
        services.dead_letter_replay_request(actor=world.users["platform_admin"], letter=letter, reason="")
    contract.refuse_ids.clear()
    services.dead_letter_replay_request(
        actor=world.users["platform_admin"], letter=letter, reason="mapping fixed"
    )
    result = pump.sink_pump(sink_id=sink.pk)
    letter.refresh_from_db()
    assert letter.state == DeadLetterState.REPLAYED
    assert refused_uid in contract.stored
    assert {"siem.dead_letter_replay_requested", "siem.dead_letter_replayed"} <= set(actions())


def test_413_splits_the_batch_until_it_fits(world, pki, loopback, receiver):  # noqa: F811
    contract = Contract(token=TOKEN, max_items=3)
    siem_contracts.elastic(receiver, contract)
    sink = make_sink(world, pki, receiver, "elastic", batch_size=10)
    record_events(world.org, 10)
    pump_until_idle(sink)
    assert contract.ids() == org_uids(world.org)[: len(contract.ids())]
    assert max(contract.requests) <= 3
    assert not DeadLetter.objects.exists()


def test_401_pauses_the_sink_until_its_secret_is_replaced(world, pki, loopback, receiver):  # noqa: F811
    """GIVEN a sink whose token the receiver refuses THEN the sink is paused (ledger event), the
    cursor stays, later pumps do nothing; a new secret resumes it and everything is delivered."""
    contract = Contract(token="the-right-one")
    siem_contracts.elastic(receiver, contract)
    sink = make_sink(world, pki, receiver, "elastic")
    record_events(world.org, 4)
    assert pump.sink_pump(sink_id=sink.pk).stopped == "paused"
    sink.refresh_from_db()
    assert sink.status == SinkStatus.PAUSED
    assert "401" in sink.status_message
    assert "siem.sink_paused" in actions()
    assert pump.sink_pump(sink_id=sink.pk).stopped == "inactive"
    assert position(sink) == 0

    services.sink_update(actor=world.users["platform_admin"], sink=sink, secret="the-right-one")
    sink.refresh_from_db()
    assert sink.status == SinkStatus.ACTIVE
    pump_until_idle(sink)
    assert set(org_uids(world.org)) - set(contract.ids()) <= {
        str(u) for u in AuditEvent.objects.filter(sequence__isnull=True).values_list("uid", flat=True)
    }
    assert len(contract.ids()) >= 4


def test_a_batch_failing_past_the_limit_goes_to_a_dead_letter(world, pki, loopback, receiver):  # noqa: F811
    loopback.SIEM_MAX_FAILURES = 3
    contract = Contract(token=TOKEN, down=429)
    siem_contracts.elastic(receiver, contract)
    sink = make_sink(world, pki, receiver, "elastic")
    record_events(world.org, 5)
    results = [pump.sink_pump(sink_id=sink.pk).stopped for _ in range(3)]
    assert results == ["retrying", "retrying", "dead-lettered"]
    letter = DeadLetter.objects.get(sink=sink)
    assert letter.count >= 5
    assert letter.attempts == 3
    assert "429" in letter.error
    assert position(sink) == letter.last_sequence or position(sink) > letter.last_sequence

    services.dead_letter_acknowledge(
        actor=world.users["platform_admin"], letter=letter, reason="known outage"
    )
    letter.refresh_from_db()
    assert letter.state == DeadLetterState.ACKNOWLEDGED
    assert "siem.dead_letter_acknowledged" in actions()


def test_the_pump_reads_only_up_to_the_latest_signed_tree_head(world, pki, loopback, receiver):  # noqa: F811
    contract = Contract(token=TOKEN)
    siem_contracts.elastic(receiver, contract)
    sink = make_sink(world, pki, receiver, "elastic")
    record_events(world.org, 3)
    signed = org_uids(world.org)
    record_events(world.org, 4, seal=False)
    ledger_seal_all(sign=False)  # sealed, but no head covers them yet
    pump.sink_pump(sink_id=sink.pk)
    assert contract.ids() == signed
    ledger_seal_all()
    pump.sink_pump(sink_id=sink.pk)
    assert len(contract.ids()) >= len(signed) + 4


# --- Lease and compare-and-set -------------------------------------------------------------------


def test_a_second_pump_finds_the_lease_taken_and_sends_nothing(world, pki, loopback, receiver):  # noqa: F811
    contract = Contract(token=TOKEN)
    siem_contracts.elastic(receiver, contract)
    sink = make_sink(world, pki, receiver, "elastic")
    record_events(world.org, 3)
    assert pump.lease_take(sink.pk, "worker-a") == 0
    result = pump.sink_pump(sink_id=sink.pk, worker="worker-b")
    assert (result.leased, result.stopped) == (False, "busy")
    assert contract.requests == []
    pump.lease_release(sink.pk, "worker-a")
    assert pump.sink_pump(sink_id=sink.pk, worker="worker-b").delivered >= 3


def test_a_pump_that_lost_its_lease_cannot_move_the_cursor(world, pki, loopback, receiver):  # noqa: F811
    """GIVEN a pump whose lease expired and was taken by another while it sent THEN its
    compare-and-set fails: the cursor stays for the new holder, which sends the batch again."""
    contract = Contract(token=TOKEN)
    siem_contracts.elastic(receiver, contract)
    sink = make_sink(world, pki, receiver, "elastic")
    record_events(world.org, 3)

    def stolen_during_send(sink_, secret):
        transport = pump.default_transport(sink_, secret)
        send = transport.send

        def send_then_lose_lease(events):
            answer = send(events)
            SinkCursor.objects.filter(sink_id=sink_.pk).update(lease_owner="worker-b")
            return answer

        transport.send = send_then_lose_lease
        return transport

    result = pump.sink_pump(sink_id=sink.pk, worker="worker-a", transport_factory=stolen_during_send)
    assert result.stopped == "lost lease"
    assert position(sink) == 0
    SinkCursor.objects.filter(sink=sink).update(lease_owner="", lease_until=None)
    pump.sink_pump(sink_id=sink.pk, worker="worker-b")
    assert position(sink) > 0
    assert set(contract.received.values()) == {2}  # sent twice, stored once: _bulk's 409
    assert len(contract.stored) == len(contract.received)


def test_a_pump_that_dies_mid_batch_leaves_the_cursor_for_the_next(world, pki, loopback, receiver):  # noqa: F811
    """GIVEN a worker that dies after sending half its batch (its lease left behind) WHEN the
    lease expires THEN the next pump starts again from the cursor and every event arrives."""
    contract = Contract(token=TOKEN)
    siem_contracts.elastic(receiver, contract)
    sink = make_sink(world, pki, receiver, "elastic", batch_size=4)
    record_events(world.org, 10)

    class Killed(BaseException):
        pass

    def dies_after_sending(sink_, secret):
        transport = pump.default_transport(sink_, secret)
        send = transport.send

        def send_then_die(events):
            send(events[: len(events) // 2])
            raise Killed

        transport.send = send_then_die
        return transport

    with pytest.raises(Killed):
        pump.sink_pump(sink_id=sink.pk, worker="doomed", transport_factory=dies_after_sending)
    # The process died: its finally never ran; simulate that by leaving an (expired) lease behind.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE siem_sinkcursor SET lease_owner = 'doomed', lease_until = now() - interval '1 second' "
            "WHERE sink_id = %s",
            [sink.pk],
        )
    assert position(sink) == 0
    pump_until_idle(sink)
    assert set(org_uids(world.org)[:10]) <= set(contract.ids())
    assert all(count <= 2 for count in contract.received.values())


def test_backoff_is_jittered_and_capped(settings):
    import random

    settings.SIEM_BACKOFF_BASE_SECONDS, settings.SIEM_BACKOFF_CAP_SECONDS = 2, 300
    rng = random.Random(7)  # noqa: S311 (jitter, seeded for the test)
    assert 1 <= pump.backoff_seconds(1, rng=rng) <= 2
    assert 16 <= pump.backoff_seconds(5, rng=rng) <= 32
    values = {pump.backoff_seconds(20, rng=rng) for _ in range(5)}
    assert all(150 <= value <= 300 for value in values)
    assert len(values) == 5


# --- Splunk HEC, Datadog, webhook ----------------------------------------------------------------


def test_splunk_hec_counts_a_batch_only_once_acknowledged(world, pki, loopback, receiver, monkeypatch):  # noqa: F811
    from audit.siem import transports

    monkeypatch.setattr(transports.SplunkHecTransport, "ack_interval", 0)
    monkeypatch.setattr(transports.SplunkHecTransport, "ack_polls", 3)
    contract = Contract(token=TOKEN, acks_after=None)  # the indexer never confirms
    siem_contracts.splunk(receiver, contract)
    sink = make_sink(world, pki, receiver, "splunk_hec", ack=True, index="audit")
    record_events(world.org, 3)
    assert pump.sink_pump(sink_id=sink.pk).stopped == "retrying"
    assert position(sink) == 0

    contract.acks_after = 2  # slow acknowledgement: false twice, then true
    pump_until_idle(sink)
    assert position(sink) > 0
    entry = next(iter(contract.stored.values()))
    assert entry["index"] == "audit"
    assert entry["event"]["metadata"]["version"] == "1.5.0"


def test_datadog_gets_gzip_batches_within_its_limits(world, pki, loopback, receiver):  # noqa: F811
    contract = Contract(token=TOKEN)
    siem_contracts.datadog(receiver, contract)
    sink = make_sink(world, pki, receiver, "datadog", batch_size=1500)
    sink.format = "cef"
    sink.save(update_fields=["format"])
    record_events(world.org, 1200)
    pump_until_idle(sink)
    assert max(contract.requests) <= 1000
    assert set(org_uids(world.org)) <= set(contract.ids())
    entry = next(iter(contract.stored.values()))
    assert entry["message"].startswith("CEF:0|")
    assert entry["occurred_at"]


def test_webhook_requests_are_hmac_signed(world, pki, loopback, receiver):  # noqa: F811
    contract = Contract(token=TOKEN)
    siem_contracts.webhook(receiver, contract)
    sink = make_sink(world, pki, receiver, "webhook", path="/hook")
    record_events(world.org, 3)
    pump_until_idle(sink)
    assert set(org_uids(world.org)) <= set(contract.ids())

    services.sink_update(actor=world.users["platform_admin"], sink=sink, secret="another-key-entirely")
    record_events(world.org, 1)
    assert pump.sink_pump(sink_id=sink.pk).stopped == "paused"  # the receiver refuses the signature


# --- Services ------------------------------------------------------------------------------------


def test_sink_secrets_live_in_the_secrets_store_only(world, pki, loopback, receiver):  # noqa: F811
    sink = make_sink(world, pki, receiver, "elastic")
    stored = SinkSecret.objects.using("secrets").get(sink_id=sink.pk)
    assert stored.value == TOKEN
    assert stored.fingerprint.startswith("fp:")
    assert TOKEN not in json.dumps(Sink.objects.filter(pk=sink.pk).values().get(), default=str)
    for event in AuditEvent.objects.filter(action__startswith="siem."):
        assert TOKEN.encode() not in bytes(event.canonical)
    assert services.sink_secret_fingerprint(sink) == stored.fingerprint


def test_every_sink_change_is_a_ledger_event(world, pki, loopback, receiver):  # noqa: F811
    admin = world.users["platform_admin"]
    sink = make_sink(world, pki, receiver, "elastic")
    services.sink_update(actor=admin, sink=sink, batch_size=100, name="Elastic prod")
    services.sink_set_enabled(actor=admin, sink=sink, enabled=False)
    assert pump.sink_pump(sink_id=sink.pk).stopped == "inactive"
    services.sink_set_enabled(actor=admin, sink=sink, enabled=True)
    assert actions() == ["siem.sink_created", "siem.sink_updated", "siem.sink_disabled", "siem.sink_enabled"]
    updated = AuditEvent.objects.get(action="siem.sink_updated")
    assert updated.data["changed"] == ["batch_size", "name"]
    assert updated.target_id == str(sink.pk)


def test_only_organisation_administrators_change_sinks(world, pki, loopback, receiver):  # noqa: F811
    sink = make_sink(world, pki, receiver, "elastic")
    for role in ("workspace_owner", "compliance_officer", "auditor"):
        with pytest.raises(AccessDenied):
            services.sink_set_enabled(actor=world.users[role], sink=sink, enabled=False)
    with pytest.raises(AccessDenied):
        services.sink_create(
            actor=world.foreign_user, organization=world.org, name="x", kind="webhook",
            endpoint=f"https://127.0.0.1:{receiver.port}/hook", secret="k", options={"ca_pem": pki.ca_pem},
        )  # fmt: skip


BAD_FIELDS = [
    ({"name": "a\x00b"}, "name"),
    ({"name": "evil\u202egnp.exe"}, "name"),
    ({"name": "x" * 5000}, "name"),
    ({"name": "\ud800"}, "name"),
    ({"endpoint": "http://siem.example.com/"}, "endpoint"),
    ({"endpoint": "https://169.254.169.254/"}, "endpoint"),
    ({"endpoint": "https://10.0.0.5/"}, "endpoint"),
    ({"options": {"unknown": "x"}}, "options"),
    ({"options": {"index": "a\x00"}}, "options"),
    ({"options": ["not", "an", "object"]}, "options"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": "100"}, "batch_size"),
    ({"format": "leef"}, "format"),
    ({"kind": "ftp"}, "kind"),
    ({"secret": ""}, "secret"),
    ({"secret": "a\x00b"}, "secret"),
    ({"secret": "s" * 20_000}, "secret"),
]


@pytest.mark.parametrize(("change", "field"), BAD_FIELDS)
def test_bad_input_gets_a_field_error_and_writes_nothing(world, change, field):
    fields = {
        "name": "Elastic", "kind": "elastic", "endpoint": "https://siem.example.com:9200",
        "secret": "token", "options": {}, "batch_size": 100, "format": "ocsf", **change,
    }  # fmt: skip
    with pytest.raises(ValidationError) as raised:
        services.sink_create(actor=world.users["platform_admin"], organization=world.org, **fields)
    assert field in raised.value.message_dict
    assert not Sink.objects.exists()
    assert not actions()


def test_a_syslog_endpoint_is_host_and_port(world):
    with pytest.raises(ValidationError) as raised:
        services.sink_create(
            actor=world.users["platform_admin"], organization=world.org, name="syslog", kind="syslog",
            endpoint="siem.example.com", secret="key",
        )  # fmt: skip
    assert "host:port" in raised.value.message_dict["endpoint"][0]


def test_the_lag_is_counted_in_events_and_seconds(world, pki, loopback, receiver):  # noqa: F811
    sink = make_sink(world, pki, receiver, "elastic")
    record_events(world.org, 5)
    events, seconds = pump.sink_lag(sink)
    assert events >= 5
    assert seconds is not None
    assert seconds >= 0


def test_the_beat_sends_a_pump_for_each_delivering_sink(world, pki, loopback, receiver):  # noqa: F811
    """GIVEN a delivering sink and a disabled one WHEN the beat's task runs (eagerly here) THEN the
    delivering sink is pumped, the disabled one is not."""
    from audit.siem import tasks

    contract = Contract(token=TOKEN)
    siem_contracts.elastic(receiver, contract)
    sink = make_sink(world, pki, receiver, "elastic")
    disabled = services.sink_create(
        actor=world.users["platform_admin"], organization=world.org, name="off", kind="elastic",
        endpoint=f"https://127.0.0.1:{receiver.port}/off", secret=TOKEN, options={"ca_pem": pki.ca_pem},
    )  # fmt: skip
    services.sink_set_enabled(actor=world.users["platform_admin"], sink=disabled, enabled=False)
    record_events(world.org, 3)
    assert tasks.siem_pumps_dispatch() == 1
    assert position(sink) > 0
    assert position(disabled) == 0
    assert set(org_uids(world.org)) == set(contract.ids())


def test_a_sink_that_echoes_our_token_does_not_get_it_recorded(world, pki, loopback, receiver):  # noqa: F811
    """GIVEN a receiver that refuses every request with our own credential in its answer WHEN the
    events are dead-lettered THEN neither the dead letter, the cursor, nor the ledger holds it."""
    from werkzeug import Response

    receiver.expect_request("/_bulk", method="POST").respond_with_handler(
        lambda request: Response(f"bad request from {request.headers.get('Authorization')}", 400)
    )
    sink = make_sink(world, pki, receiver, "elastic", batch_size=2)
    record_events(world.org, 2)
    pump.sink_pump(sink_id=sink.pk)
    letters = list(DeadLetter.objects.filter(sink=sink))
    assert letters
    assert all("400" in letter.error and TOKEN not in letter.error for letter in letters)
    assert TOKEN not in SinkCursor.objects.get(sink=sink).last_error
    for event in AuditEvent.objects.filter(action__startswith="siem."):
        assert TOKEN.encode() not in bytes(event.canonical)
