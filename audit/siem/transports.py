"""How each kind of sink is spoken to, through the network boundary
(``governance.core.outbound``): the endpoint is checked (https only, no internal address unless
allow-listed), TLS 1.2+ is verified against the system's authorities or the sink's private CA,
and errors never carry the request's headers or body (they hold the sink's secret).

A transport's ``send(events)`` returns the sequences that the sink refused one by one for good
(an Elastic item error other than 409/429), or raises:

- ``RetryLaterError``: the sink is down, slow, or said 429/5xx; send the same batch again later;
- ``TooLargeError``: 413; split the batch;
- ``MisconfiguredError``: 401/403 (``UnauthorizedError``), a certificate not trusted, an endpoint
  the boundary refuses: pause the sink until an administrator fixes it (no event is to blame);
- ``RejectedError``: any other refusal of the whole batch; bisect to find the event it refuses.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import os
import ssl
import tempfile
import time
import uuid
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError

from audit.siem import formats
from audit.siem.formats import ExportedEvent
from governance.core.outbound.boundary import endpoint_check
from governance.core.outbound.client import OutboundClient, OutboundError, OutboundResponse
from governance.core.redaction import redact_text


class SendError(Exception):
    """A batch was not (entirely) delivered. The message is safe to show and record: it may quote
    the sink's answer, which a hostile or careless sink could make echo our credentials, so known
    secrets and credential formats are redacted from it here."""

    def __init__(self, message: str):
        super().__init__(redact_text(message))


class RetryLaterError(SendError):
    pass


class TooLargeError(SendError):
    pass


class MisconfiguredError(SendError):
    pass


class UnauthorizedError(MisconfiguredError):
    pass


class RejectedError(SendError):
    pass


class SinkClient(OutboundClient):
    """The outbound client, presenting the sink's client certificate when it has one."""

    def __init__(self, *, client_cert_pem: str = "", client_key_pem: str = "", **options):
        super().__init__(**options)
        self.client_cert_pem = client_cert_pem
        self.client_key_pem = client_key_pem

    def tls_context(self) -> ssl.SSLContext:
        context = super().tls_context()
        if self.client_cert_pem and self.client_key_pem:
            # ssl loads a key only from a file: a private one (0600) removed as soon as it is read.
            handle, path = tempfile.mkstemp(prefix="sink-", suffix=".pem")
            try:
                with os.fdopen(handle, "w") as file:
                    file.write(self.client_cert_pem.strip() + "\n" + self.client_key_pem.strip() + "\n")
                context.load_cert_chain(path)
            except ssl.SSLError:
                raise OutboundError("The sink's client certificate or key could not be loaded.") from None
            finally:
                os.unlink(path)
        return context


def _classify(response: OutboundResponse, shown: str) -> None:
    """Raise the error a non-2xx status means."""
    status = response.status
    if 200 <= status < 300:
        return
    if status in (401, 403):
        raise UnauthorizedError(f"{shown} answered {status}: the sink refused the credentials.")
    if status == 413:
        raise TooLargeError(f"{shown} answered 413: the batch is too large.")
    if status in (408, 429) or status >= 500:
        raise RetryLaterError(f"{shown} answered {status}.")
    raise RejectedError(f"{shown} answered {status}: {response.body[:200].decode('utf-8', 'replace')}")


class Transport:
    """Base of the transports: the sink, its secret, the client that calls it."""

    max_batch = 1000

    def __init__(self, sink, *, secret: str, cadata: str | None = None, timeout: float = 10.0):
        self.sink = sink
        self.secret = secret
        self.options: dict[str, Any] = sink.options or {}
        self.client = SinkClient(
            organization=sink.organization_id,
            cadata=cadata or self.options.get("ca_pem") or None,
            spki_pins=self.options.get("spki_pins") or (),
            timeout=timeout,
            max_response_bytes=2 * 1024 * 1024,
            client_cert_pem=self.options.get("client_cert_pem", ""),
            client_key_pem=secret if sink.kind == "syslog" else "",
        )

    def send(self, events: Sequence[ExportedEvent]) -> dict[int, str]:
        raise NotImplementedError

    def _post(self, path_url: str, body: bytes, headers: dict[str, str]) -> OutboundResponse:
        try:
            response = self.client.request("POST", path_url, headers=headers, body=body)
        except OutboundError as error:
            if error.refused:
                raise MisconfiguredError(str(error)) from None  # the boundary, TLS or a pin refused it
            raise RetryLaterError(str(error)) from None
        _classify(response, response.url)
        return response


class WebhookTransport(Transport):
    """POST ``{"events": [...]}``, signed: ``X-Signature: sha256=HMAC(key, timestamp "." body)``."""

    def send(self, events):
        body = json.dumps(
            {"events": [formats.as_json_document(event, self.sink.format) for event in events]},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8", "replace")
        timestamp = str(int(time.time()))
        signature = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        self._post(
            self.sink.endpoint,
            body,
            {
                "Content-Type": "application/json",
                "X-Signature-Timestamp": timestamp,
                "X-Signature": "sha256=" + signature.hexdigest(),
            },
        )
        return {}


class SplunkHecTransport(Transport):
    """``/services/collector/event`` with ``Authorization: Splunk <token>``; with indexer
    acknowledgement (option ``ack``), the batch counts only once ``/services/collector/ack`` says so."""

    ack_polls = 20
    ack_interval = 0.25

    def send(self, events):
        channel = str(uuid.uuid5(uuid.NAMESPACE_URL, str(self.sink.uid)))
        headers = {
            "Authorization": f"Splunk {self.secret}",
            "Content-Type": "application/json",
            "X-Splunk-Request-Channel": channel,
        }
        lines = []
        for event in events:
            entry: dict[str, Any] = {
                "time": event.occurred_at.timestamp(),
                "host": self.options.get("host", "governance"),
                "source": "governance:ledger",
                "sourcetype": self.options.get("sourcetype", f"governance:{self.sink.format}"),
                "event": formats.render(event, self.sink.format),
                "fields": {"ledger_uid": event.uid, "ledger_sequence": event.sequence},
            }
            if self.options.get("index"):
                entry["index"] = self.options["index"]
            lines.append(json.dumps(entry, separators=(",", ":"), ensure_ascii=False))
        base = self.sink.endpoint.rstrip("/")
        response = self._post(
            base + "/services/collector/event", "\n".join(lines).encode("utf-8", "replace"), headers
        )
        if not self.options.get("ack"):
            return {}
        try:
            ack_id = json.loads(response.body).get("ackId")
        except (ValueError, AttributeError):
            ack_id = None
        if ack_id is None:
            raise RetryLaterError("Splunk HEC gave no ackId although acknowledgement is on for this sink.")
        for _poll in range(self.ack_polls):
            answer = self._post(
                base + "/services/collector/ack", json.dumps({"acks": [ack_id]}).encode(), headers
            )
            try:
                if json.loads(answer.body).get("acks", {}).get(str(ack_id)) is True:
                    return {}
            except (ValueError, AttributeError):
                pass
            time.sleep(self.ack_interval)
        raise RetryLaterError(
            f"Splunk HEC did not acknowledge batch {ack_id} in time; it will be sent again."
        )


class ElasticBulkTransport(Transport):
    """``_bulk`` with one ``create`` per event, ``_id`` the event's id: a copy sent twice is a 409,
    which counts as delivered. An item refused for good (400…) is returned to be dead-lettered;
    429 or 5xx on an item sends the whole batch again (the delivered ones then answer 409)."""

    def send(self, events):
        index = self.options.get("index", "governance-ledger")
        lines = []
        for event in events:
            lines.append(json.dumps({"create": {"_index": index, "_id": event.uid}}))
            document = formats.as_json_document(event, self.sink.format)
            document["@timestamp"] = event.occurred_at.isoformat()
            lines.append(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
        body = ("\n".join(lines) + "\n").encode("utf-8", "replace")
        headers = {"Content-Type": "application/x-ndjson", "Authorization": self._authorization()}
        response = self._post(self.sink.endpoint.rstrip("/") + "/_bulk", body, headers)
        try:
            answer = json.loads(response.body)
            items = answer.get("items", []) if answer.get("errors") else []
        except (ValueError, AttributeError):
            raise RetryLaterError("The _bulk answer was not JSON; the batch will be sent again.") from None
        refused: dict[int, str] = {}
        retry = False
        for event, item in zip(events, items, strict=False):
            result = item.get("create", {}) if isinstance(item, dict) else {}
            status = result.get("status", 0)
            if 200 <= status < 300 or status == 409:
                continue
            if status == 429 or status >= 500:
                retry = True
            else:
                reason = result.get("error", {})
                reason = reason.get("reason", "") if isinstance(reason, dict) else str(reason)
                refused[event.sequence] = redact_text(f"_bulk refused the event ({status}): {reason}")[:300]
        if items and len(items) != len(events):
            raise RetryLaterError(
                "The _bulk answer did not account for every event; the batch will be sent again."
            )
        if retry:
            raise RetryLaterError("_bulk answered 429 or 5xx for some events; the batch will be sent again.")
        return refused

    def _authorization(self) -> str:
        if self.options.get("auth") == "basic":
            return "Basic " + base64.b64encode(self.secret.encode()).decode()
        return f"ApiKey {self.secret}"


class DatadogTransport(Transport):
    """``/api/v2/logs``, gzip, ``DD-API-KEY``: at most 1,000 entries and 5 MB (uncompressed) per
    request and 1 MB per entry (Datadog's limits); the original time is kept as ``occurred_at``."""

    max_batch = 1000
    max_payload = 5 * 1024 * 1024
    max_entry = 1024 * 1024

    def send(self, events):
        entries, refused = [], {}
        for event in events:
            entry = {
                "ddsource": "governance",
                "service": self.options.get("service", "governance-ledger"),
                "hostname": self.options.get("hostname", "governance"),
                "ddtags": self.options.get("tags", f"format:{self.sink.format}"),
                "message": formats.as_text(event, self.sink.format),
                "occurred_at": event.occurred_at.isoformat(),
                "timestamp": event.epoch_ms,
                "ledger": event.ledger_fields(),
            }
            encoded = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")
            if len(encoded) > self.max_entry:
                refused[event.sequence] = "The event is larger than Datadog's 1 MB limit per log."
                continue
            entries.append(encoded)
        if not entries:
            return refused
        payload = b"[" + b",".join(entries) + b"]"
        if len(payload) > self.max_payload:
            raise TooLargeError("The batch is larger than Datadog's 5 MB limit per request.")
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "DD-API-KEY": self.secret,
        }
        self._post(self.sink.endpoint.rstrip("/") + "/api/v2/logs", gzip.compress(payload), headers)
        return refused


class SyslogTransport(Transport):
    """RFC 5424 messages, RFC 5425 octet-counted framing, over TLS 1.2+ (client certificate when
    the sink has one: its key is the sink's secret).

    Syslog has no application acknowledgement, so the batch counts as delivered only when the
    receiver still has the session after reading it: before sending and again after, the session
    is read for ``probe_seconds`` (a receiver never writes, so the read times out — unless it
    refused us: under TLS 1.3 a server refuses a client certificate *after* the handshake, with
    an alert that only a read sees), then our TLS close must be answered by the receiver's own.
    A refusal of our certificate (or an unknown CA on either side) is a misconfiguration."""

    probe_seconds = 0.2

    def send(self, events):
        host, port = split_host_port(self.sink.endpoint)
        try:
            endpoint = endpoint_check(
                f"https://{host_for_url(host)}:{port}/", organization=self.sink.organization_id
            )
        except ValidationError as error:
            raise MisconfiguredError(f"The syslog endpoint was refused: {' '.join(error.messages)}") from None
        hostname = self.options.get("hostname", "governance")
        frames = b"".join(
            formats.octet_counted(formats.syslog_message(event, self.sink.format, hostname=hostname))
            for event in events
        )
        shown = f"{host}:{port}"
        try:
            connection = self.client.open_tls(endpoint, self.client.timeout)
        except OutboundError as error:
            raise (MisconfiguredError if error.refused else RetryLaterError)(str(error)) from None
        except ssl.SSLCertVerificationError as error:
            raise MisconfiguredError(
                f"The certificate of {shown} was not accepted: {error.verify_message}."
            ) from None
        except (ssl.SSLError, OSError) as error:
            raise _tls_failure(error, shown, "Could not reach") from None
        try:
            self._still_accepted(connection, shown)
            connection.sendall(frames)
            self._still_accepted(connection, shown)
            connection.unwrap().close()
        except (ssl.SSLError, OSError) as error:
            connection.close()
            raise _tls_failure(error, shown, "The session with") from None
        return {}

    def _still_accepted(self, connection: ssl.SSLSocket, shown: str) -> None:
        """Read briefly: a timeout means the receiver kept the session; anything else means not."""
        connection.settimeout(self.probe_seconds)
        try:
            data = connection.recv(1)
        except TimeoutError:
            return
        finally:
            connection.settimeout(self.client.timeout)
        raise RetryLaterError(
            f"{shown} closed the session{' and sent data' if data else ''} before taking the batch."
        )


def _tls_failure(error: OSError, shown: str, prefix: str) -> SendError:
    """What a TLS or socket error means: a refused certificate pauses the sink; the rest is retried."""
    reason = getattr(error, "reason", None) or ""
    if isinstance(error, ssl.SSLError) and ("CERTIFICATE" in reason or "UNKNOWN_CA" in reason):
        return MisconfiguredError(
            f"{shown} refused our TLS session ({reason.lower().replace('_', ' ')}): check the sink's client "
            "certificate and key, and the receiver's trusted authorities."
        )
    detail = reason or getattr(error, "strerror", None) or type(error).__name__
    return RetryLaterError(f"{prefix} {shown} failed: {detail}.")


def split_host_port(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) of a syslog endpoint; ValueError when it is not one."""
    host, _, port = text.strip().rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if (
        not host
        or not port.isascii()
        or not port.isdigit()
        or not 0 < int(port) < 65536
        or any(char in host for char in "/?#@[] \\")  # nothing a URL would read as another part
        or (":" in host and not bracketed)
    ):
        raise ValueError(
            "Give the syslog receiver as host:port (e.g. siem.example.com:6514, [2001:db8::1]:6514)."
        )
    return host, int(port)


def host_for_url(host: str) -> str:
    """``host`` as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


TRANSPORTS: dict[str, type[Transport]] = {
    "syslog": SyslogTransport,
    "splunk_hec": SplunkHecTransport,
    "elastic": ElasticBulkTransport,
    "datadog": DatadogTransport,
    "webhook": WebhookTransport,
}
