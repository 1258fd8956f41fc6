"""SIEM sinks in the control panel: an organisation administrator sets one up (the secret goes
to the secrets store and never comes back to a page), bad input gets field errors, the lag and
status are shown, a dead letter is replayed or acknowledged with a reason."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from audit.siem.models import DeadLetter, DeadLetterState, Sink, SinkSecret, SinkStatus
from tests.audit.siem_world import siem_objects_of

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

SECRET = "hec-4f1e2d3c-secret-value"
ADD = "admin:siem_sink_add"


@pytest.fixture
def administrator(world, client):
    client.force_login(world.users["platform_admin"])
    return client


def form(**overrides) -> dict:
    return {
        "name": "Splunk prod", "kind": "splunk_hec", "format": "ocsf",
        "endpoint": "https://splunk.example.com:8088", "secret": SECRET,
        "options": '{"index": "audit", "ack": true}', "batch_size": "500", "enabled": "on", **overrides,
    }  # fmt: skip


def test_an_administrator_sets_up_a_sink_whose_secret_never_comes_back(world, administrator):
    response = administrator.post(reverse(ADD), form())
    assert response.status_code == 302, response.content.decode()[:2000]
    sink = Sink.objects.get(name="Splunk prod")
    assert (sink.organization_id, sink.kind, sink.options) == (
        world.org.pk,
        "splunk_hec",
        {"index": "audit", "ack": True},
    )
    assert SinkSecret.objects.using("secrets").get(sink_id=sink.pk).value == SECRET
    assert AuditEvent.objects.filter(action="siem.sink_created", target_id=str(sink.pk)).exists()
    page = administrator.get(reverse("admin:siem_sink_change", args=[sink.pk])).content.decode()
    assert SECRET not in page
    assert "fp:" in page
    assert "delivered up to ledger #" in page.lower()

    response = administrator.post(
        reverse("admin:siem_sink_change", args=[sink.pk]), {**form(secret=""), "batch_size": "250"}
    )
    assert response.status_code == 302
    sink.refresh_from_db()
    assert sink.batch_size == 250
    assert SinkSecret.objects.using("secrets").get(sink_id=sink.pk).value == SECRET  # kept


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"endpoint": "http://splunk.example.com"}, "endpoint"),
        ({"endpoint": "https://127.0.0.1:8088"}, "endpoint"),
        ({"name": "evil\u202egnp"}, "name"),
        ({"options": '{"color": "red"}'}, "options"),
        ({"options": '{"index": "\\u0000"}'}, "options"),
        ({"batch_size": "999999"}, "batch_size"),
        ({"secret": ""}, "secret"),
        ({"secret": "x" * 20_000}, "secret"),
        ({"kind": "gopher"}, "kind"),
    ],
)
def test_bad_input_gets_a_field_error_never_a_500(world, administrator, overrides, field):
    response = administrator.post(reverse(ADD), form(**overrides))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Sink.objects.exists()


def test_disabling_a_sink_from_its_page(world, administrator):
    administrator.post(reverse(ADD), form())
    sink = Sink.objects.get()
    data = form(secret="")
    del data["enabled"]
    administrator.post(reverse("admin:siem_sink_change", args=[sink.pk]), data)
    sink.refresh_from_db()
    assert sink.status == SinkStatus.DISABLED
    assert AuditEvent.objects.filter(action="siem.sink_disabled").exists()


def test_a_dead_letter_is_replayed_with_a_reason(world, administrator):
    letter = siem_objects_of(world)["siem.deadletter"]["own"]
    url = reverse("admin:siem_deadletter_change", args=[letter.pk])
    page = administrator.get(url)
    assert page.status_code == 200
    assert "503" in page.content.decode()
    response = administrator.post(url, {"decision": "replay", "reason": ""})
    assert response.status_code == 200  # the reason is required
    response = administrator.post(url, {"decision": "replay", "reason": "the outage is over"})
    assert response.status_code == 302
    letter.refresh_from_db()
    assert letter.state == DeadLetterState.REPLAY_REQUESTED
    event = AuditEvent.objects.get(action="siem.dead_letter_replay_requested")
    assert event.data["reason"] == "the outage is over"
    assert DeadLetter.objects.get(pk=letter.pk).sink.organization_id == world.org.pk


@pytest.mark.parametrize(
    ("endpoint", "accepted"),
    [
        ("siem.example.com:6514", True),
        ("[2606:4700:4700::1111]:6514", True),
        ("evil.example#:6514", False),  # a URL would read the port as a fragment: shown 6514, dialled 443
        ("evil.example/x:6514", False),
        ("user@evil.example:6514", False),
        ("2606:4700::1111:6514", False),  # IPv6 without brackets is ambiguous
        ("siem.example.com:６５１４", False),
    ],
)
def test_a_syslog_endpoint_is_exactly_host_and_port(endpoint, accepted):
    from audit.siem.transports import split_host_port

    if accepted:
        assert split_host_port(endpoint)[1] == 6514
    else:
        with pytest.raises(ValueError, match="host:port"):
            split_host_port(endpoint)
