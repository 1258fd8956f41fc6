"""The kernel's network boundary beyond integrations: the deadline on host name lookups, the
operator's allow-lists (internal destinations, plain http) and the allow-list sources that higher
floors register. Spellings, redirects, TLS and pins are in tests/workflows/test_outbound.py."""

from __future__ import annotations

import http.server
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from governance.core.outbound import boundary
from governance.core.outbound.boundary import endpoint_check
from governance.core.outbound.client import OutboundClient, OutboundError

PUBLIC = "93.184.216.34"


def public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC]


@pytest.fixture
def stalled_dns():
    """A resolver that never answers within a test (it gives a public address after 30 s, so a
    check without a deadline would wait and then pass)."""
    release = threading.Event()

    def resolve(host: str, port: int) -> list[str]:
        release.wait(30)
        return [PUBLIC]

    yield resolve
    release.set()


# --- DNS deadline ----------------------------------------------------------------------------------


def test_a_lookup_that_does_not_answer_in_time_is_refused(settings, stalled_dns):
    """GIVEN a DNS server that never answers and OUTBOUND_DNS_TIMEOUT of 0.2 s WHEN a URL with a host
    name is checked THEN it is refused as unresolved within the deadline, not waited for."""
    settings.OUTBOUND_DNS_TIMEOUT = 0.2
    with pytest.raises(ValidationError, match=r"api\.example\.com could not be resolved within 0\.2 seconds"):
        endpoint_check("https://api.example.com/", organization=None, resolver=stalled_dns)


def test_the_system_resolver_runs_under_the_deadline_too(settings, stalled_dns, monkeypatch):
    """GIVEN the system resolver stalls WHEN a check uses it (no resolver given) THEN the deadline
    applies to it as well."""
    settings.OUTBOUND_DNS_TIMEOUT = 0.2
    monkeypatch.setattr(boundary, "system_resolver", stalled_dns)
    with pytest.raises(ValidationError, match="could not be resolved within"):
        endpoint_check("https://api.example.com/", organization=None)


def test_the_client_refuses_a_host_whose_lookup_stalls(settings, stalled_dns):
    """GIVEN a stalled DNS server WHEN the client is asked to call a host name THEN it refuses the
    call with the lookup's deadline as the reason, and reports the refusal."""
    settings.OUTBOUND_DNS_TIMEOUT = 0.2
    reported = []
    client = OutboundClient(
        organization=None, resolver=stalled_dns, record_refusal=lambda message, url: reported.append(url)
    )
    with pytest.raises(OutboundError, match="could not be resolved within") as refused:
        client.request("GET", "https://api.example.com/x?token=secret")
    assert refused.value.refused
    assert reported == ["https://api.example.com/x"]


def test_an_unresolvable_name_passes_a_configuration_check_only(settings):
    """GIVEN a host name that does not resolve WHEN it is checked as a setting (resolution not
    required) THEN it passes with no addresses; WHEN checked for a fetch THEN it is refused."""

    def nothing(host, port):
        raise OSError("NXDOMAIN")

    checked = endpoint_check(
        "https://idp.example/", organization=None, resolver=nothing, require_resolution=False
    )
    assert checked.addresses == ()
    with pytest.raises(ValidationError, match="could not be resolved"):
        endpoint_check("https://idp.example/", organization=None, resolver=nothing)


# --- The operator's allow-lists --------------------------------------------------------------------


def test_the_operator_allow_list_lifts_a_refusal_for_every_organisation(settings):
    """GIVEN OUTBOUND_ALLOW_LIST names 10.20.0.0/16 and sso.corp.test WHEN those are checked, with
    or without an organisation THEN they pass; a neighbouring network does not."""
    settings.OUTBOUND_ALLOW_LIST = ["10.20.0.0/16", "SSO.corp.test"]
    assert endpoint_check("https://10.20.3.4/", organization=None).allow_listed
    assert endpoint_check("https://[::ffff:10.20.3.4]/", organization=None).allow_listed
    corp = endpoint_check("https://sso.corp.test/", organization=None, resolver=lambda h, p: ["10.99.0.1"])
    assert corp.allow_listed
    with pytest.raises(ValidationError, match=r"10\.21\.0\.1 is a private address"):
        endpoint_check("https://10.21.0.1/", organization=None)


def test_a_metadata_address_needs_exactly_its_own_operator_entry(settings):
    settings.OUTBOUND_ALLOW_LIST = ["169.254.0.0/16"]
    with pytest.raises(ValidationError, match="must allow-list exactly this address"):
        endpoint_check("https://169.254.169.254/", organization=None)
    settings.OUTBOUND_ALLOW_LIST = ["169.254.169.254"]
    assert endpoint_check("https://169.254.169.254/", organization=None).allow_listed


def test_a_malformed_operator_entry_stops_the_check_loudly(settings):
    """GIVEN OUTBOUND_ALLOW_LIST holds something that is neither a host nor a network WHEN a refusal
    would consult it THEN the check fails as misconfigured (never silently allowing)."""
    settings.OUTBOUND_ALLOW_LIST = ["10.0.0.0/33"]
    with pytest.raises(
        ImproperlyConfigured, match=r"OUTBOUND_ALLOW_LIST: 10\.0\.0\.0/33 is not a valid network"
    ):
        endpoint_check("https://10.0.0.1/", organization=None)


def test_plain_http_is_refused_unless_the_operator_allows_it_for_that_host(settings):
    """GIVEN no OUTBOUND_ALLOW_PLAIN_HTTP THEN http:// is refused; GIVEN it names 127.0.0.1 THEN
    http://127.0.0.1 passes once the address is allow-listed too, and any other host stays https
    only."""
    settings.OUTBOUND_ALLOW_LIST = ["127.0.0.1", "10.0.0.0/8"]
    with pytest.raises(ValidationError, match=r"Only https:// endpoints are allowed\."):
        endpoint_check("http://127.0.0.1:8199/issuer", organization=None)
    settings.OUTBOUND_ALLOW_PLAIN_HTTP = ["127.0.0.1"]
    checked = endpoint_check("http://127.0.0.1/issuer", organization=None)
    assert (checked.scheme, checked.port, checked.shown) == ("http", 80, "http://127.0.0.1/issuer")
    with pytest.raises(ValidationError, match=r"Only https:// endpoints are allowed\."):
        endpoint_check("http://10.0.0.1/", organization=None)
    with pytest.raises(ValidationError, match=r"Only https:// endpoints are allowed\."):
        endpoint_check("http://api.example.com/", organization=None, resolver=public_resolver)
    settings.OUTBOUND_ALLOW_LIST = []
    with pytest.raises(ValidationError, match=r"127\.0\.0\.1 is a loopback address"):
        endpoint_check("http://127.0.0.1/issuer", organization=None)


# --- Allow-list sources of higher floors -----------------------------------------------------------


def test_a_registered_source_lifts_refusals_for_its_organisation_only(monkeypatch):
    """GIVEN a source that allow-lists 192.168.5.0/24 for organisation 7 WHEN 192.168.5.9 is checked
    for organisation 7 THEN it passes; for organisation 8 or none THEN it is refused."""
    monkeypatch.setattr(boundary, "_allow_list_sources", [])
    boundary.register_allow_list_source(
        lambda organization_id: ["192.168.5.0/24"] if organization_id == 7 else []
    )
    assert endpoint_check("https://192.168.5.9/", organization=7).allow_listed
    for other in (8, None):
        with pytest.raises(ValidationError, match=r"192\.168\.5\.9 is a private address"):
            endpoint_check("https://192.168.5.9/", organization=other)


def test_integrations_register_their_allow_list_rules():
    """The workflows app registers its NetworkAllowRule rows as a source when it is ready."""
    from workflows.integrations.selectors import organization_allow_list

    assert organization_allow_list in boundary._allow_list_sources


# --- The client over plain http (development and tests only) --------------------------------------


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format, *args):
        pass


@pytest.fixture
def plain_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_client_speaks_plain_http_only_where_the_operator_allows_it(settings, plain_server):
    """GIVEN a plain HTTP server on 127.0.0.1 WHEN the operator allows it (address and plain http)
    THEN the client fetches from it; WHEN plain http is not allowed THEN the call is refused."""
    url = f"http://127.0.0.1:{plain_server.server_address[1]}/"
    settings.OUTBOUND_ALLOW_LIST = ["127.0.0.1"]
    with pytest.raises(OutboundError, match="Only https:// endpoints are allowed"):
        OutboundClient(organization=None, timeout=5).request("GET", url)
    settings.OUTBOUND_ALLOW_PLAIN_HTTP = ["127.0.0.1"]
    response = OutboundClient(organization=None, timeout=5).request("GET", url)
    assert (response.status, response.body, response.url) == (200, b"hello", url)
