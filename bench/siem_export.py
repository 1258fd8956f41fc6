"""SIEM export throughput: the pump delivering the ledger to an in-process HTTPS ``_bulk`` sink.

Setup: one organisation, N sealed and signed ledger events of it (default 50,000, made with COPY
and sealed by the sealer), a sink of kind ``elastic`` (OCSF) pointing at an HTTPS server on
127.0.0.1 in this process (threads; it parses every ``create`` and answers 201 per item, as
``_bulk`` does), reached through the network boundary (the loopback address allow-listed).

(a) Baseline, in the same run: formatting alone — every event read once, turned into its OCSF
record and the ``_bulk`` NDJSON lines (what the transport builds), nothing sent.
(b) The pump: ``sink_pump`` from cursor 0 to the signed tree head — lease, read in ledger order,
format, HTTPS POST per batch (500 events), compare-and-set of the cursor. Every event must
reach the receiver exactly once. The figure is its events/s and the ratio to (a).
(c) When Debian's rsyslog (with its OpenSSL driver) is installed: the pump to a real rsyslog over
TLS on 127.0.0.1 (RFC 5425 frames, batches of ``--syslog-batch``), until rsyslog has written every
event to its file; baseline, in the same run: writing the same octet-counted bytes to a local
plain TCP socket that a thread reads and discards.

    .venv/bin/python bench/siem_export.py [--events 50000] [--batch 500] [--syslog-batch 2000]
"""

from __future__ import annotations

import argparse
import datetime
import http.server
import ipaddress
import json
import os
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

SECRETS_DB_NAME = "bench_siem_secrets"
TOKEN = "bench-api-key"


def add_crypto_database_arguments(parser: argparse.ArgumentParser) -> None:
    """``--database``, ``--secrets-database`` and ``--fresh`` (sinks keep their secret in the store)."""
    common.add_database_arguments(parser, default="bench_siem")
    parser.add_argument(
        "--secrets-database",
        default=SECRETS_DB_NAME,
        help=f"secrets store benchmark database (default {SECRETS_DB_NAME}; created if missing)",
    )


def certificate(directory: Path) -> tuple[str, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1: (CA PEM, certificate file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    name = lambda text: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])  # noqa: E731
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("Bench CA")).issuer_name(name("Bench CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return ca.public_bytes(serialization.Encoding.PEM).decode(), cert_file, key_file


class BulkReceiver(http.server.BaseHTTPRequestHandler):
    """``POST /_bulk``: every ``create`` answered 201 (409 for an id seen before), counted."""

    received: Counter = Counter()
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        lines = body.split(b"\n")
        items = []
        with self.lock:
            for action in lines[0::2]:
                if not action:
                    continue
                uid = json.loads(action)["create"]["_id"]
                self.received[uid] += 1
                status = 201 if self.received[uid] == 1 else 409
                items.append({"create": {"_id": uid, "status": status}})
        answer = json.dumps({"took": 1, "errors": False, "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


def serve(cert_file: Path, key_file: Path) -> http.server.ThreadingHTTPServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BulkReceiver)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return httpd


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000, help="ledger events to export (default 50,000)")
    parser.add_argument("--batch", type=int, default=500, help="events per request (default 500)")
    parser.add_argument(
        "--syslog-batch", type=int, default=2000, help="events per TLS session to rsyslog (default 2000)"
    )
    add_crypto_database_arguments(parser)
    options = common.parse_arguments(parser, smoke={"events": 300, "batch": 100, "syslog_batch": 100})
    common.ensure_database(options.secrets_database, fresh=options.fresh)
    os.environ["SECRETS_DATABASE_URL"] = f"{common.SERVER_URL}/{options.secrets_database}"
    common.setup_django(options.database, fresh=options.fresh)

    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", database="secrets", verbosity=0)
    settings.OUTBOUND_ALLOW_LIST = ["127.0.0.1"]

    from accounts.models import User
    from audit.models import AuditEvent
    from audit.sealing import ledger_seal_all
    from audit.siem import formats, pump, services
    from audit.siem.models import SinkSecret
    from governance.tenancy.models import Membership, Organization

    print(f"siem_export: {options.events:,} events, batches of {options.batch}, database {options.database}")
    common.title("Setup (not measured)")
    common.execute(
        "TRUNCATE siem_deadletter, siem_sinkcursor, siem_sink, tenancy_membership, accounts_user, "
        "tenancy_organization RESTART IDENTITY CASCADE"
    )
    SinkSecret.objects.using("secrets").all().delete()
    common.reset_ledger()
    organization = Organization.objects.create(name="Bench", slug="bench")  # id 1, as the generator's events
    admin = User.objects.create(email="admin@bench.test", organization=organization, password="!")
    Membership.objects.create(user=admin, organization=organization, role_id="platform_admin")
    copied = common.copy_events(options.events)
    common.show("events written (COPY)", common.rate(options.events, copied))
    started = time.perf_counter()
    ledger_seal_all()
    common.show("sealed and signed", common.rate(options.events, time.perf_counter() - started))

    directory = Path(tempfile.mkdtemp(prefix="bench-siem-"))
    ca_pem, cert_file, key_file = certificate(directory)
    httpd = serve(cert_file, key_file)
    sink = services.sink_create(
        actor=admin, organization=organization, name="bench _bulk", kind="elastic",
        endpoint=f"https://127.0.0.1:{httpd.server_address[1]}", secret=TOKEN,
        options={"ca_pem": ca_pem, "index": "bench"}, batch_size=options.batch,
    )  # fmt: skip
    common.settle("audit_auditevent", "siem_sinkcursor")

    common.title("(a) baseline: formatting alone (OCSF record and _bulk lines, nothing sent)")
    tree_size = pump.signed_tree_size()
    started = time.perf_counter()
    formatted, position = 0, 0
    while position < tree_size:
        window = min(tree_size, position + pump.SCAN_WINDOW)
        events = pump.events_between(sink, position, window, options.batch, tree_size)
        for event in events:
            json.dumps({"create": {"_index": "bench", "_id": event.uid}})
            json.dumps(formats.as_json_document(event, "ocsf"), separators=(",", ":"), ensure_ascii=False)
        formatted += len(events)
        position = events[-1].sequence if len(events) == options.batch else window
    baseline = time.perf_counter() - started
    common.show("read and formatted", common.rate(formatted, baseline))

    common.title("(b) the pump to the in-process HTTPS _bulk sink")
    started = time.perf_counter()
    result = pump.sink_pump(sink_id=sink.pk)
    seconds = time.perf_counter() - started
    expected = AuditEvent.objects.filter(organization_id=organization.pk, sequence__lte=tree_size).count()
    received = BulkReceiver.received
    common.show("delivered by the pump", common.rate(result.delivered, seconds))
    common.show(
        "received exactly once each",
        f"{len(received):,} ids, max {max(received.values(), default=0)} copies",
        f"= {expected:,}, 1",
        len(received) == expected and set(received.values()) == {1},
    )
    common.show("ratio to formatting alone", f"{(result.delivered / seconds) / (formatted / baseline):.2f}×")
    common.show("requests (batches)", f"{result.batches:,}")
    httpd.shutdown()
    syslog_section(options, organization, admin, ca_pem, cert_file, key_file, directory)


def syslog_section(options, organization, admin, ca_pem, cert_file, key_file, directory: Path) -> None:
    """(c): the pump to a real rsyslog over TLS against plain socket writes of the same bytes."""
    import shutil
    import socket
    import subprocess

    from audit.siem import formats, pump, services

    common.title("(c) the pump to rsyslog over TLS, against writing the same bytes to a local socket")
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not (Path(rsyslogd).exists() and list(Path("/usr/lib").glob("*/rsyslog/lmnsd_ossl.so"))):
        common.show("skipped", "rsyslog and rsyslog-openssl are not installed (make pytest installs them)")
        return
    (directory / "ca.pem").write_text(ca_pem)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = directory / "received.log"
    (directory / "rsyslog.conf").write_text(f"""
global(workDirectory="{directory}" maxMessageSize="256k" DefaultNetstreamDriver="ossl"
       DefaultNetstreamDriverCAFile="{directory / "ca.pem"}" DefaultNetstreamDriverCertFile="{cert_file}"
       DefaultNetstreamDriverKeyFile="{key_file}")
module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="siem") {{ action(type="omfile" file="{output}" template="raw") }}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="siem")
""")
    command = [rsyslogd, "-n", "-f", str(directory / "rsyslog.conf"), "-i", str(directory / "rsyslogd.pid")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    common.show("skipped", "rsyslogd did not start")
                    return
                time.sleep(0.05)
        sink = services.sink_create(
            actor=admin, organization=organization, name="bench rsyslog", kind="syslog",
            endpoint=f"127.0.0.1:{port}", secret="no-client-key", options={"ca_pem": ca_pem},
            batch_size=options.syslog_batch,
        )  # fmt: skip
        tree_size = pump.signed_tree_size()
        events = pump.events_between(sink, 0, tree_size, tree_size, tree_size)
        frames = b"".join(
            formats.octet_counted(formats.syslog_message(event, "ocsf", hostname="governance"))
            for event in events
        )
        plain_seconds = _plain_socket_write(frames)
        common.show(
            "baseline: the same bytes to a plain local socket", common.rate(len(events), plain_seconds)
        )
        started = time.perf_counter()
        result = pump.sink_pump(sink_id=sink.pk)
        written = 0
        deadline = time.monotonic() + 300
        while written < len(events) and time.monotonic() < deadline:
            written = output.read_text("utf-8").count("\n") if output.exists() else 0
            if written < len(events):
                time.sleep(0.01)
        seconds = time.perf_counter() - started
        common.show("the pump, until rsyslog wrote every event", common.rate(written, seconds))
        common.show("events written by rsyslog", f"{written:,}", f"= {len(events):,}", written == len(events))
        common.show(
            "ratio to plain socket writes", f"{(written / seconds) / (len(events) / plain_seconds):.4f}×"
        )
        common.show("TLS sessions (batches)", f"{result.batches:,}")
    finally:
        process.terminate()
        process.wait(timeout=15)


def _plain_socket_write(frames: bytes) -> float:
    """Seconds to write ``frames`` to a local TCP socket that a thread reads and discards."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    received = []

    def drain() -> None:
        connection, _ = server.accept()
        with connection:
            total = 0
            while chunk := connection.recv(1 << 16):
                total += len(chunk)
            received.append(total)

    reader = threading.Thread(target=drain)
    reader.start()
    started = time.perf_counter()
    with socket.create_connection(server.getsockname()) as client:
        client.sendall(frames)
    reader.join()
    seconds = time.perf_counter() - started
    server.close()
    assert received == [len(frames)]
    return seconds


if __name__ == "__main__":
    main()
