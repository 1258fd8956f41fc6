"""The syslog sink against a real rsyslog (Debian's ``rsyslog`` and ``rsyslog-openssl``, installed
by ``make pytest``): TLS on 127.0.0.1 with a throw-away CA, RFC 5425 octet-counted frames, the
file rsyslog writes checked line by line; a client certificate when the receiver demands one;
the receiver down for a while, then back, with every event written exactly once."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from audit.models import AuditEvent
from audit.siem import pump, services
from audit.siem.models import SinkCursor, SinkStatus
from tests.audit.test_siem import org_uids, record_events
from tests.tools import unavailable

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
OSSL_DRIVERS = sorted(Path("/usr/lib").glob("*/rsyslog/lmnsd_ossl.so"))
PATIENCE = 15.0


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class SyslogPki:
    directory: Path
    ca_pem: str
    client_cert_pem: str
    client_key_pem: str


@pytest.fixture(scope="module")
def syslog_pki(tmp_path_factory) -> SyslogPki:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("SIEM test CA")).issuer_name(_name("SIEM test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip

    def leaf(name: str, usage, san=None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )  # fmt: skip
        if san is not None:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    server, server_key = leaf(
        "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    client, client_key = leaf("portal-exporter", ExtendedKeyUsageOID.CLIENT_AUTH)
    directory = tmp_path_factory.mktemp("syslog-pki")
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    (directory / "ca.pem").write_text(ca_pem)
    (directory / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_text(_pem(server_key))
    (directory / "server.key").chmod(0o600)
    return SyslogPki(
        directory, ca_pem, client.public_bytes(serialization.Encoding.PEM).decode(), _pem(client_key)
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Rsyslog:
    """rsyslogd in the foreground with a configuration of its own: one TLS input, one file."""

    def __init__(self, directory: Path, pki: SyslogPki, *, client_certificates: bool = False):
        self.directory = directory
        self.pki = pki
        self.port = _free_port()
        self.auth_mode = "x509/certvalid" if client_certificates else "anon"
        self.output = directory / "received.log"
        self.process: subprocess.Popen | None = None

    def config(self) -> str:
        pki = self.pki.directory
        return f"""
global(workDirectory="{self.directory}" maxMessageSize="256k"
       DefaultNetstreamDriver="ossl" DefaultNetstreamDriverCAFile="{pki / "ca.pem"}"
       DefaultNetstreamDriverCertFile="{pki / "server.pem"}" DefaultNetstreamDriverKeyFile="{pki / "server.key"}")
module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="{self.auth_mode}"
       gnutlsPriorityString="MinProtocol=TLSv1.2")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="siem") {{ action(type="omfile" file="{self.output}" template="raw") }}
input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="siem")
"""

    def start(self) -> None:
        conf = self.directory / "rsyslog.conf"
        conf.write_text(self.config())
        command = [RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.directory / "rsyslogd.pid")]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    output = self.process.stdout.read().decode(errors="replace")
                    pytest.fail(f"rsyslogd exited at start: {output[-2000:]}")
                assert time.monotonic() < deadline, "rsyslogd never listened"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=PATIENCE)
        self.process = None

    def lines(self, *, expect: int) -> list[str]:
        """The messages written so far, waiting until ``expect`` are there (rsyslog writes async)."""
        deadline = time.monotonic() + PATIENCE
        while True:
            text = self.output.read_text("utf-8") if self.output.exists() else ""
            lines = [line for line in text.split("\n") if line]
            if len(lines) >= expect or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)


@pytest.fixture
def rsyslog_factory(tmp_path, syslog_pki):
    if not (Path(RSYSLOGD).exists() and OSSL_DRIVERS):
        unavailable(
            "rsyslog and rsyslog-openssl are not installed (Debian: apt-get install rsyslog rsyslog-openssl)"
        )
    started: list[Rsyslog] = []

    def start(**options) -> Rsyslog:
        directory = tmp_path / f"rsyslog-{len(started)}"
        directory.mkdir()
        receiver = Rsyslog(directory, syslog_pki, **options)
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def loopback(settings):
    settings.OUTBOUND_ALLOW_LIST = ["127.0.0.1"]
    settings.SIEM_BACKOFF_BASE_SECONDS = 0
    settings.SIEM_BACKOFF_CAP_SECONDS = 0
    return settings


def syslog_sink(world, receiver: Rsyslog, pki: SyslogPki, *, fmt="ocsf", client_certificate=False):
    options = {"ca_pem": pki.ca_pem, "hostname": "portal"}
    if client_certificate:
        options["client_cert_pem"] = pki.client_cert_pem
    return services.sink_create(
        actor=world.users["platform_admin"],
        organization=world.org,
        name=f"rsyslog {receiver.port}",
        kind="syslog",
        format=fmt,
        endpoint=f"127.0.0.1:{receiver.port}",
        secret=pki.client_key_pem if client_certificate else "no-client-key",
        options=options,
        batch_size=50,
    )


def uid_of(line: str) -> str:
    return line.split('[ledger@32473 uid="', 1)[1].split('"', 1)[0]


def drain(sink) -> None:
    for _ in range(20):
        result = pump.sink_pump(sink_id=sink.pk)
        if result.stopped or not result.batches:
            return


def test_rsyslog_receives_every_event_once_as_rfc5424(world, loopback, rsyslog_factory, syslog_pki):
    receiver = rsyslog_factory()
    sink = syslog_sink(world, receiver, syslog_pki, fmt="cef")
    record_events(world.org, 120)
    drain(sink)
    expected = org_uids(world.org)
    lines = receiver.lines(expect=len(expected))
    assert sorted(uid_of(line) for line in lines) == expected
    first = lines[0]
    assert first.startswith("<110>1 ")
    assert " portal governance - " in first
    assert "CEF:0|Governance portal|" in first
    sequence = AuditEvent.objects.get(uid=uid_of(first)).sequence
    assert f'sequence="{sequence}" leaf_index="{sequence - 1}"' in first
    assert SinkCursor.objects.get(sink=sink).position >= sequence


def test_rsyslog_down_for_a_while_then_back_loses_nothing(world, loopback, rsyslog_factory, syslog_pki):
    """GIVEN the receiver stopped WHEN the pump runs THEN the sink is failing and the cursor
    stays; once rsyslog listens again every event is written exactly once."""
    receiver = rsyslog_factory()
    sink = syslog_sink(world, receiver, syslog_pki)
    record_events(world.org, 10)
    receiver.stop()
    assert pump.sink_pump(sink_id=sink.pk).stopped == "retrying"
    sink.refresh_from_db()
    assert sink.status == SinkStatus.FAILING
    assert SinkCursor.objects.get(sink=sink).position == 0

    receiver.start()
    drain(sink)
    expected = org_uids(world.org)
    lines = receiver.lines(expect=len(expected))
    uids = [uid_of(line) for line in lines]
    assert set(expected) <= set(uids)
    assert len(uids) == len(set(uids))


def test_a_receiver_that_demands_a_client_certificate(world, loopback, rsyslog_factory, syslog_pki):
    receiver = rsyslog_factory(client_certificates=True)
    without = syslog_sink(world, receiver, syslog_pki)
    record_events(world.org, 3)
    """Without one the receiver refuses the session (under TLS 1.3, after the handshake): nothing
    counts as delivered, and the sink is paused with the reason; with one, everything arrives."""
    for _attempt in range(3):  # the refusal is seen every time, not by luck
        assert pump.sink_pump(sink_id=without.pk).stopped == "paused"
        without.refresh_from_db()
        assert "certificate" in without.status_message
        assert SinkCursor.objects.get(sink=without).position == 0  # nothing counted as delivered
        services.sink_set_enabled(actor=world.users["platform_admin"], sink=without, enabled=True)

    with_certificate = services.sink_create(
        actor=world.users["platform_admin"], organization=world.org, name="rsyslog mTLS", kind="syslog",
        endpoint=f"127.0.0.1:{receiver.port}", secret=syslog_pki.client_key_pem,
        options={"ca_pem": syslog_pki.ca_pem, "client_cert_pem": syslog_pki.client_cert_pem},
    )  # fmt: skip
    drain(with_certificate)
    lines = receiver.lines(expect=3)
    assert len(lines) >= 3


def test_an_untrusted_receiver_certificate_is_refused(world, loopback, rsyslog_factory, syslog_pki):
    receiver = rsyslog_factory()
    sink = services.sink_create(
        actor=world.users["platform_admin"], organization=world.org, name="rsyslog untrusted",
        kind="syslog", endpoint=f"127.0.0.1:{receiver.port}", secret="k", options={},
    )  # fmt: skip
    record_events(world.org, 2)
    """A misconfiguration pauses the sink, with the reason and a ledger event; no event is blamed."""
    assert pump.sink_pump(sink_id=sink.pk).stopped == "paused"
    sink.refresh_from_db()
    assert sink.status == SinkStatus.PAUSED
    assert "certificate" in sink.status_message
    assert AuditEvent.objects.filter(action="siem.sink_paused", target_id=str(sink.pk)).exists()
    assert SinkCursor.objects.get(sink=sink).position == 0
    assert not sink.dead_letters.exists()
