"""Contract servers for the SIEM tests: HTTPS receivers on 127.0.0.1 (pytest-httpserver) that
answer what Splunk HEC, Elastic/OpenSearch ``_bulk``, Datadog's logs intake and a webhook answer
— 429, 413, 409, per-item errors, 401, slow acknowledgements — and keep what they accepted."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import ssl
from collections import Counter
from dataclasses import dataclass, field

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


def https_server(pki) -> HTTPServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    return server


@dataclass
class Contract:
    """What a receiver accepted, and how it misbehaves next.

    ``down``: answer this status to every request (503, 429, 401…) until cleared; ``refuse_ids``:
    _bulk items answered 400 (mapper_parsing_exception); ``max_items``: larger requests get 413;
    ``acks_after``: HEC ack polls answered false before true (None: never true)."""

    token: str
    down: int | None = None
    refuse_ids: set[str] = field(default_factory=set)
    max_items: int | None = None
    acks_after: int | None = 0
    stored: dict[str, dict] = field(default_factory=dict)
    received: Counter = field(default_factory=Counter)
    requests: list[int] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    _ack_polls: int = 0

    def ids(self) -> list[str]:
        return sorted(self.stored)


def elastic(server: HTTPServer, contract: Contract) -> None:
    def handle(request: Request) -> Response:
        if request.headers.get("Authorization") != f"ApiKey {contract.token}":
            return Response(json.dumps({"error": "security_exception"}), 401)
        if contract.down:
            return Response(json.dumps({"error": "unavailable"}), contract.down)
        lines = [line for line in request.get_data().split(b"\n") if line]
        pairs = list(zip(lines[::2], lines[1::2], strict=True))
        if contract.max_items is not None and len(pairs) > contract.max_items:
            return Response("request entity too large", 413)
        contract.requests.append(len(pairs))
        items, errors = [], False
        for action, source in pairs:
            meta = json.loads(action)["create"]
            document = json.loads(source)
            contract.received[meta["_id"]] += 1
            if meta["_id"] in contract.refuse_ids:
                errors = True
                items.append({"create": {"_id": meta["_id"], "status": 400, "error": {
                    "type": "mapper_parsing_exception", "reason": "failed to parse field"}}})  # fmt: skip
            elif meta["_id"] in contract.stored:
                errors = True
                items.append({"create": {"_id": meta["_id"], "status": 409, "error": {
                    "type": "version_conflict_engine_exception", "reason": "document already exists"}}})  # fmt: skip
            else:
                contract.stored[meta["_id"]] = document
                items.append({"create": {"_id": meta["_id"], "status": 201, "result": "created"}})
        return Response(json.dumps({"took": 1, "errors": errors, "items": items}), 200,
                        content_type="application/json")  # fmt: skip

    server.expect_request("/_bulk", method="POST").respond_with_handler(handle)


def splunk(server: HTTPServer, contract: Contract) -> None:
    def event(request: Request) -> Response:
        if request.headers.get("Authorization") != f"Splunk {contract.token}":
            return Response(json.dumps({"text": "Invalid token", "code": 4}), 403)
        if contract.down:
            return Response(json.dumps({"text": "Server is busy", "code": 9}), contract.down)
        decoder, text, entries = json.JSONDecoder(), request.get_data(as_text=True), []
        position = 0
        while position < len(text):
            entry, position = decoder.raw_decode(text, position)
            entries.append(entry)
            while position < len(text) and text[position].isspace():
                position += 1
        contract.requests.append(len(entries))
        for entry in entries:
            uid = entry["fields"]["ledger_uid"]
            contract.received[uid] += 1
            contract.stored[uid] = entry
        contract._ack_polls = 0
        return Response(json.dumps({"text": "Success", "code": 0, "ackId": len(contract.requests)}), 200)

    def ack(request: Request) -> Response:
        requested = json.loads(request.get_data())["acks"]
        contract._ack_polls += 1
        done = contract.acks_after is not None and contract._ack_polls > contract.acks_after
        return Response(json.dumps({"acks": {str(i): done for i in requested}}), 200)

    server.expect_request("/services/collector/event", method="POST").respond_with_handler(event)
    server.expect_request("/services/collector/ack", method="POST").respond_with_handler(ack)


DATADOG_MAX_ENTRIES, DATADOG_MAX_BYTES = 1000, 5 * 1024 * 1024


def datadog(server: HTTPServer, contract: Contract) -> None:
    def handle(request: Request) -> Response:
        if request.headers.get("DD-API-KEY") != contract.token:
            return Response(json.dumps({"errors": ["Forbidden"]}), 403)
        if contract.down:
            return Response("{}", contract.down)
        assert request.headers.get("Content-Encoding") == "gzip"
        payload = gzip.decompress(request.get_data())
        entries = json.loads(payload)
        if len(entries) > DATADOG_MAX_ENTRIES or len(payload) > DATADOG_MAX_BYTES:
            return Response("{}", 413)
        contract.requests.append(len(entries))
        for entry in entries:
            contract.received[entry["ledger"]["uid"]] += 1
            contract.stored[entry["ledger"]["uid"]] = entry
        return Response("{}", 202)

    server.expect_request("/api/v2/logs", method="POST").respond_with_handler(handle)


def webhook(server: HTTPServer, contract: Contract) -> None:
    def handle(request: Request) -> Response:
        body = request.get_data()
        timestamp = request.headers.get("X-Signature-Timestamp", "")
        expected = hmac.new(contract.token.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        if not hmac.compare_digest(request.headers.get("X-Signature", ""), "sha256=" + expected.hexdigest()):
            return Response("bad signature", 401)
        if contract.down:
            return Response("", contract.down)
        events = json.loads(body)["events"]
        contract.requests.append(len(events))
        for event in events:
            uid = event["metadata"]["uid"] if "metadata" in event else event["ledger"]["uid"]
            contract.received[uid] += 1
            contract.stored[uid] = event
        return Response("", 204)

    server.expect_request("/hook", method="POST").respond_with_handler(handle)
