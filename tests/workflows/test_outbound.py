"""The network boundary of integrations: endpoint checks in every spelling, DNS answers, the allow-list,
and the outbound client against a real local HTTPS server (TLS 1.2+, pins, redirects, caps)."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from governance.core.outbound.boundary import endpoint_check
from governance.core.outbound.client import OutboundError, spki_hash
from workflows.integrations import services
from workflows.integrations.outbound.client import IntegrationClient

PUBLIC = "93.184.216.34"


def public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC]


def resolver_of(mapping: dict[str, list[str]]):
    """A resolver answering from ``mapping`` (what a hostile DNS server could answer)."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise OSError("no such host")
        return mapping[host]

    return resolve


def check(url: str, *, organization=None, resolver=public_resolver):
    return endpoint_check(url, organization=organization, resolver=resolver)


# --- Refused spellings -------------------------------------------------------------------------

REFUSED = [
    ("http://api.example.com/", "Only https:// endpoints are allowed."),
    ("ftp://api.example.com/", "Only https:// endpoints are allowed."),
    ("https://127.0.0.1/", "127.0.0.1 is a loopback address; an administrator must allow-list it."),
    ("https://2130706433/", "127.0.0.1 is a loopback address"),
    ("https://0177.0.0.1/", "127.0.0.1 is a loopback address"),
    ("https://0x7f.0.0.1/", "127.0.0.1 is a loopback address"),
    ("https://0x7f000001/", "127.0.0.1 is a loopback address"),
    ("https://127.1/", "127.0.0.1 is a loopback address"),
    ("https://[64:ff9b:1::a9fe:a9fe]/", "a local-use translation (NAT64) address"),
    ("https://[::ffff:0:a9fe:a9fe]/", "a cloud metadata address"),
    ("https://[fec0::1]/", "a reserved address"),
    ("https://127.0.1/", "127.0.0.1 is a loopback address"),
    ("https://017700000001/", "127.0.0.1 is a loopback address"),
    ("https://127.0.0.1./", "127.0.0.1 is a loopback address"),
    ("https://１２７.０.０.１/", "127.0.0.1 is a loopback address"),
    ("https://[::1]/", "::1 is a loopback address"),
    ("https://[::ffff:127.0.0.1]/", "(that is 127.0.0.1) is a loopback address"),
    ("https://[::ffff:7f00:1]/", "(that is 127.0.0.1) is a loopback address"),
    ("https://[::127.0.0.1]/", "(that is 127.0.0.1) is a loopback address"),
    ("https://[64:ff9b::a00:1]/", "(that is 10.0.0.1) is a private address"),
    ("https://[2002:c0a8:101::]/", "(that is 192.168.1.1) is a private address"),
    ("https://10.0.0.1/", "10.0.0.1 is a private address"),
    ("https://172.16.5.4/", "172.16.5.4 is a private address"),
    ("https://192.168.1.1:8443/", "192.168.1.1 is a private address"),
    ("https://[fd00::1]/", "fd00::1 is a private address"),
    ("https://[fc00::1]/", "fc00::1 is a private address"),
    ("https://169.254.1.1/", "169.254.1.1 is a link-local address"),
    ("https://[fe80::1]/", "fe80::1 is a link-local address"),
    ("https://0.0.0.0/", "0.0.0.0 is an unspecified ('this network') address"),
    ("https://0/", "0.0.0.0 is an unspecified"),
    ("https://[::]/", ":: is an unspecified"),
    ("https://224.0.0.251/", "224.0.0.251 is a multicast address"),
    ("https://[ff02::1]/", "ff02::1 is a multicast address"),
    ("https://100.64.0.1/", "100.64.0.1 is a shared (carrier-grade NAT) address"),
    ("https://255.255.255.255/", "255.255.255.255 is a reserved address"),
    ("https://192.0.2.10/", "192.0.2.10 is a non-public (reserved or special-purpose) address"),
    ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("https://2852039166/", "169.254.169.254 is a cloud metadata address"),
    ("https://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
    ("https://[::ffff:a9fe:a9fe]/", "(that is 169.254.169.254) is a cloud metadata address"),
    ("https://100.100.100.200/", "100.100.100.200 is a cloud metadata address"),
    (
        "https://metadata.google.internal/computeMetadata/v1/",
        "metadata.google.internal is a cloud metadata service",
    ),
    ("https://user:secret@api.example.com/", "User names and passwords in the URL are not allowed"),
    ("https://@api.example.com/", "User names and passwords in the URL are not allowed"),
    ("https://api.example.com\\@127.0.0.1/", "backslash"),
    ("https://api.example.com /", "spaces or control characters"),
    ("https://api.exa\nmple.com/", "spaces or control characters"),
    ("https://::1/", "Put an IPv6 address in brackets"),
    ("https://[::1/", "The URL is malformed"),
    ("https://[fe80::1%25eth0]/", "zone identifiers"),
    ("https://[not-an-address]/", "The URL is malformed: the address in brackets"),
    ("https://[1.2.3.4]/", "The URL is malformed: the address in brackets"),
    ("https://api.example.com:0/", "not a valid port"),
    ("https://api.example.com:70000/", "not a valid port"),
    ("https://api.example.com:+443/", "not a valid port"),
    ("https://08.0.0.1/", "08.0.0.1 is not a valid IPv4 address."),
    ("https://1.2.3.4.5/", "not a valid IPv4 address"),
    ("https://256.1.1.1/", "not a valid IPv4 address"),
    ("https://bad_host!.example.com/", "is not a valid host name"),
    ("https://%6c%6fcalhost/", "Percent-encoded host names are not allowed."),
    ("https:///path-only", "The URL has no host."),
    ("", "Enter the endpoint URL."),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED, ids=[url or "empty" for url, _ in REFUSED])
def test_refused_endpoints_say_why(url, reason):
    """GIVEN a URL in one of the forms that reach inside WHEN checked THEN it is refused, saying why."""
    with pytest.raises(ValidationError) as refused:
        check(url)
    assert reason in " ".join(refused.value.messages)


@pytest.mark.parametrize(
    ("url", "host", "port", "target"),
    [
        ("https://api.example.com/v1/items?page=2", "api.example.com", 443, "/v1/items?page=2"),
        ("HTTPS://API.Example.COM:8443", "api.example.com", 8443, "/"),
        ("https://8.8.8.8/", "8.8.8.8", 443, "/"),
        ("https://[2001:4860:4860::8888]:443/dns", "2001:4860:4860::8888", 443, "/dns"),
        ("https://bücher.example/", "xn--bcher-kva.example", 443, "/"),
    ],
)
def test_public_endpoints_pass(url, host, port, target):
    checked = check(url)
    assert (checked.host, checked.port, checked.target) == (host, port, target)
    assert not checked.allow_listed


def test_a_name_resolving_to_an_internal_address_is_refused():
    """DNS decides where a name leads: one internal answer among public ones is enough to refuse."""
    resolver = resolver_of({"innocent.example.com": [PUBLIC, "10.1.2.3"]})
    with pytest.raises(
        ValidationError, match=r"innocent.example.com resolves to 10.1.2.3, which is a private"
    ):
        check("https://innocent.example.com/", resolver=resolver)


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("fe80::1%eth0", "link-local"),
        ("100.100.100.200", "cloud metadata"),
    ],
)
def test_every_internal_answer_is_refused(answer, kind):
    with pytest.raises(ValidationError, match=kind):
        check("https://rebind.example.com/", resolver=resolver_of({"rebind.example.com": [answer]}))


def test_the_real_localhost_is_refused():
    """The system resolver's answer for localhost is a loopback address."""
    with pytest.raises(ValidationError, match=r"localhost resolves to .* loopback address"):
        endpoint_check("https://localhost:8443/", organization=None)


def test_an_unresolvable_name_is_refused():
    with pytest.raises(ValidationError, match=r"could not be resolved"):
        check("https://nowhere.example.com/", resolver=resolver_of({}))


# --- The allow-list ------------------------------------------------------------------------------


def allow(world, destination: str) -> None:
    services.network_allow_rule_create(
        actor=world.users["platform_admin"],
        organization=world.org,
        destination=destination,
        reason="test server",
    )


def test_an_allow_listed_network_lifts_the_refusal(world):
    """GIVEN 10.20.0.0/16 on the allow-list THEN 10.20.x.y passes (in any spelling), 10.21.x.y does not."""
    allow(world, "10.20.0.0/16")
    assert check("https://10.20.3.4/", organization=world.org).allow_listed
    assert check("https://0x0a.0x14.3.4/", organization=world.org).allow_listed
    assert check("https://[::ffff:10.20.3.4]/", organization=world.org).allow_listed
    with pytest.raises(ValidationError, match=r"10.21.3.4 is a private address"):
        check("https://10.21.3.4/", organization=world.org)
    with pytest.raises(ValidationError, match=r"10.20.3.4 is a private address"):
        check("https://10.20.3.4/", organization=world.foreign_org)  # another organisation's rule


def test_an_allow_listed_host_name_lifts_the_refusal(world):
    allow(world, "Intranet.Acme.Test")
    resolver = resolver_of({"intranet.acme.test": ["10.9.9.9"], "other.acme.test": ["10.9.9.9"]})
    assert check("https://intranet.acme.test/api", organization=world.org, resolver=resolver).allow_listed
    with pytest.raises(ValidationError, match=r"other.acme.test resolves to 10.9.9.9"):
        check("https://other.acme.test/api", organization=world.org, resolver=resolver)


def test_metadata_addresses_need_a_rule_for_exactly_that_address(world):
    """A broad link-local rule does not open the metadata service; a /32 for it does."""
    allow(world, "169.254.0.0/16")
    assert check("https://169.254.10.10/", organization=world.org).allow_listed
    with pytest.raises(ValidationError, match=r"must allow-list exactly this address"):
        check("https://169.254.169.254/", organization=world.org)
    allow(world, "169.254.169.254")
    assert check("https://169.254.169.254/", organization=world.org).allow_listed


def test_removing_a_rule_restores_the_refusal(world):
    allow(world, "192.168.7.0/24")
    rule = world.org.network_allow_rules.get()
    services.network_allow_rule_remove(actor=world.users["platform_admin"], rule=rule)
    with pytest.raises(ValidationError, match=r"192.168.7.7 is a private address"):
        check("https://192.168.7.7/", organization=world.org)


# --- Fuzzing --------------------------------------------------------------------------------------

_HOSTISH = st.text(alphabet="0123456789abcdefx.:[]%@-", max_size=40)
_URLISH = st.one_of(
    st.text(max_size=80),
    st.builds(lambda rest: "https://" + rest, st.text(max_size=60)),
    st.builds(lambda host, tail: f"https://{host}{tail}", _HOSTISH, st.text(max_size=20)),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_URLISH)
def test_endpoint_check_raises_nothing_but_validation_errors(url):
    """Whatever the text, the check returns an endpoint or raises ValidationError, never anything else."""
    try:
        checked = check(url)
    except ValidationError:
        return
    assert checked.port > 0
    assert checked.addresses


# --- The client against a local HTTPS server -------------------------------------------------------


@dataclass
class Pki:
    ca_pem: str
    cert_file: Path
    key_file: Path
    spki: str


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    """A throw-away CA and a server certificate for 127.0.0.1 and api.acme.test."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("Test CA")).issuer_name(_name("Test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(_name("api.acme.test")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("api.acme.test"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    directory = tmp_path_factory.mktemp("pki")
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    return Pki(ca_pem, cert_file, key_file, spki_hash(leaf.public_bytes(serialization.Encoding.DER)))


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes of the test server; ``/seen`` reports the Authorization header it last received."""

    seen: dict[str, str | None] = {}

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        _Handler.seen[self.path] = self.headers.get("Authorization")
        routes = {
            "/ok": (200, {}, b"hello"),
            "/big": (200, {}, b"x" * 5000),
            "/to-metadata": (302, {"Location": "https://169.254.169.254/latest/meta-data/"}, b""),
            "/to-http": (302, {"Location": f"http://127.0.0.1:{port}/ok"}, b""),
            "/to-ok": (302, {"Location": "/ok"}, b""),
            "/to-name": (307, {"Location": f"https://api.acme.test:{port}/ok"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
        }
        status, headers, body = routes.get(self.path, (404, {}, b"missing"))
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def log_message(self, *args) -> None:
        pass


@dataclass
class Server:
    port: int
    thread: threading.Thread
    httpd: http.server.ThreadingHTTPServer

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"


def _serve(pki: Pki, *, configure=None) -> Server:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    if configure is not None:
        configure(context)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return Server(httpd.server_address[1], thread, httpd)


@pytest.fixture(scope="module")
def server(pki) -> Iterator[Server]:
    running = _serve(pki)
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


@pytest.fixture
def loopback_allowed(world):
    """The organisation allow-lists 127.0.0.1, where the test server listens."""
    allow(world, "127.0.0.1")
    return world


def client(world, pki, **options) -> IntegrationClient:
    return IntegrationClient(organization=world.org, cadata=pki.ca_pem, timeout=5, **options)


def refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="integration.outbound_refused").order_by("id"))


def test_a_call_to_an_allow_listed_server_succeeds(loopback_allowed, pki, server):
    response = client(loopback_allowed, pki).request("GET", server.url("/ok"))
    assert (response.status, response.body) == (200, b"hello")
    assert response.url == server.url("/ok")


def test_the_client_connects_to_the_address_it_checked(loopback_allowed, pki, server):
    """SNI and the certificate are checked for the name; the name is resolved once (no rebinding)."""
    calls = []

    def resolver(host, port):
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["8.8.8.8"]  # a rebinding DNS server

    response = client(loopback_allowed, pki, resolver=resolver).request(
        "GET", server.url("/ok", "api.acme.test")
    )
    assert response.body == b"hello"
    assert calls == ["api.acme.test"]


def test_without_the_allow_list_the_server_is_refused_and_recorded(world, pki, server):
    with pytest.raises(OutboundError, match=r"127.0.0.1 is a loopback address") as refused:
        client(world, pki).request("GET", server.url("/ok"))
    assert refused.value.refused
    event = refusals()[-1]
    assert event.outcome == "denied"
    assert event.organization_id == world.org.pk
    assert "loopback" in event.data["reason"]


def test_a_redirect_to_the_metadata_service_is_refused(loopback_allowed, pki, server):
    with pytest.raises(
        OutboundError, match=r"redirect .* was refused: 169.254.169.254 is a cloud metadata address"
    ):
        client(loopback_allowed, pki).request("GET", server.url("/to-metadata"))
    assert refusals()[-1].data["url"] == "https://169.254.169.254/latest/meta-data/"


def test_a_redirect_to_plain_http_is_refused(loopback_allowed, pki, server):
    with pytest.raises(OutboundError, match=r"redirect .* was refused: Only https:// endpoints are allowed."):
        client(loopback_allowed, pki).request("GET", server.url("/to-http"))


def test_a_same_origin_redirect_is_followed_and_keeps_headers(loopback_allowed, pki, server):
    response = client(loopback_allowed, pki).request(
        "GET", server.url("/to-ok"), headers={"Authorization": "Bearer same-origin"}
    )
    assert response.body == b"hello"
    assert response.url == server.url("/ok")
    assert _Handler.seen["/ok"] == "Bearer same-origin"


def test_a_cross_origin_redirect_drops_the_callers_headers(loopback_allowed, pki, server):
    """Tokens meant for one origin are not handed to the next one."""
    _Handler.seen.pop("/ok", None)
    resolver = resolver_of({"api.acme.test": ["127.0.0.1"]})
    response = client(loopback_allowed, pki, resolver=resolver).request(
        "GET", server.url("/to-name"), headers={"Authorization": "Bearer first-origin"}
    )
    assert response.url == server.url("/ok", "api.acme.test")
    assert _Handler.seen["/to-name"] == "Bearer first-origin"
    assert _Handler.seen["/ok"] is None


def test_a_cross_origin_redirect_that_repeats_the_body_is_refused(loopback_allowed, pki, server):
    """A 307/308 repeats the request with its body (a client secret): never to another origin."""
    resolver = resolver_of({"api.acme.test": ["127.0.0.1"]})
    with pytest.raises(OutboundError, match="with a body to another origin"):
        client(loopback_allowed, pki, resolver=resolver).request(
            "POST", server.url("/to-name"), body=b"client_secret=never-forwarded"
        )


def test_redirect_loops_stop(loopback_allowed, pki, server):
    with pytest.raises(OutboundError, match=r"Too many redirects \(more than 5\)"):
        client(loopback_allowed, pki).request("GET", server.url("/loop"))


def test_the_response_size_is_capped(loopback_allowed, pki, server):
    with pytest.raises(OutboundError, match=r"larger than the cap of 1000 bytes"):
        client(loopback_allowed, pki, max_response_bytes=1000).request("GET", server.url("/big"))


def test_a_matching_spki_pin_is_accepted(loopback_allowed, pki, server):
    other = "A" * 43 + "="
    response = client(loopback_allowed, pki, spki_pins=[other, pki.spki]).request("GET", server.url("/ok"))
    assert response.status == 200


def test_a_mismatching_spki_pin_is_refused_without_sending_the_request(loopback_allowed, pki, server):
    _Handler.seen.pop("/ok", None)
    with pytest.raises(OutboundError, match=r"matches none of the pinned keys"):
        client(loopback_allowed, pki, spki_pins=["A" * 43 + "="]).request(
            "GET", server.url("/ok"), headers={"Authorization": "Bearer pinned"}
        )
    assert "/ok" not in _Handler.seen
    assert "pinned keys" in refusals()[-1].data["reason"]


def test_an_untrusted_certificate_is_refused(loopback_allowed, server):
    """Without the test CA, the server's certificate is not trusted."""
    with pytest.raises(OutboundError, match=r"was not accepted"):
        IntegrationClient(organization=loopback_allowed.org, timeout=5).request("GET", server.url("/ok"))


def test_the_wrong_host_name_is_refused(loopback_allowed, pki, server):
    """The certificate names api.acme.test and 127.0.0.1, not other.acme.test."""
    allow(loopback_allowed, "other.acme.test")
    resolver = resolver_of({"other.acme.test": ["127.0.0.1"]})
    with pytest.raises(OutboundError, match=r"was not accepted"):
        client(loopback_allowed, pki, resolver=resolver).request("GET", server.url("/ok", "other.acme.test"))


def _legacy_tls(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")


def _can_speak_tls11(pki: Pki, port: int) -> bool:
    """Whether the local OpenSSL completes a TLS 1.1 handshake with the legacy server at all."""
    import socket

    context = ssl.create_default_context(cadata=pki.ca_pem)
    try:
        _legacy_tls(context)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            return tls.version() == "TLSv1.1"
    except (ssl.SSLError, OSError, ValueError):
        return False


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_a_server_capped_at_tls_1_1_is_refused(loopback_allowed, pki):
    legacy = _serve(pki, configure=_legacy_tls)
    try:
        outbound = client(loopback_allowed, pki)
        assert outbound.tls_context().minimum_version == ssl.TLSVersion.TLSv1_2
        if not _can_speak_tls11(pki, legacy.port):
            # This OpenSSL cannot offer TLS 1.1 even to a permissive client, so no server can be
            # capped at it here; the client context's minimum version (asserted above) is the proof.
            return
        with pytest.raises(OutboundError, match=r"TLS handshake .* failed .* TLS 1.2 or newer"):
            outbound.request("GET", legacy.url("/ok"))
    finally:
        legacy.httpd.shutdown()
        legacy.httpd.server_close()


def test_errors_never_contain_header_values(loopback_allowed, pki, server):
    """Tokens travel in headers; refusals and failures name the header at most, never its value."""
    secret = "Bearer s3cr3t-t0ken-value"
    pinned = client(loopback_allowed, pki, spki_pins=["A" * 43 + "="])
    plain = client(loopback_allowed, pki)
    for outbound, headers, path in (
        (pinned, {"Authorization": secret}, "/ok"),  # refused: pin mismatch
        (plain, {"Authorization": secret}, "/to-metadata"),  # refused: redirect inside
        (plain, {"Authorization": secret}, "/loop"),  # refused: too many redirects
        (plain, {"Authorization": secret + "\r\nX-Injected: 1"}, "/ok"),  # header injection
        (plain, {"X-Api-Key": secret + "\u2603"}, "/ok"),  # not Latin-1
    ):
        with pytest.raises(OutboundError) as failed:
            outbound.request("POST", server.url(path), headers=headers, body=b"payload " + secret.encode())
        assert "s3cr3t" not in str(failed.value)
    assert not any("s3cr3t" in str(event.data) for event in refusals())


def test_the_refusal_names_the_header_not_its_value(loopback_allowed, pki, server):
    with pytest.raises(OutboundError, match=r"header Authorization contains a line break") as failed:
        client(loopback_allowed, pki).request("GET", server.url("/ok"), headers={"Authorization": "a\r\nb"})
    assert "a\r\nb" not in str(failed.value)
