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

    .venv/bin/python bench/siem_export.py [--events 50000] [--batch 500]
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
    add_crypto_database_arguments(parser)
    options = common.parse_arguments(parser, smoke={"events": 300, "batch": 100})
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


if __name__ == "__main__":
    main()
