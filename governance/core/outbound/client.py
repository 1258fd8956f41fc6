"""The outbound client: verified TLS 1.2+ to the address the boundary check resolved, optional SPKI
pins, time and size caps, and redirects followed by hand with every hop checked again.

Connecting to the checked address (never resolving the name a second time) defeats DNS rebinding.
Errors never repeat request header values or bodies: they carry credentials. Every server-side
fetch goes through this client (integrations, OpenID Connect discovery, token, userinfo and JWKS);
what a refusal leaves in the ledger is the caller's ``record_refusal``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.exceptions import ValidationError

from governance.core.outbound.boundary import CheckedEndpoint, Resolver, endpoint_check, url_shown

# Called with (message, URL as shown) when the boundary refuses a call; may record it.
RefusalRecorder = Callable[[str, str], None]


def spki_hash(certificate_der: bytes) -> str:
    """Base64 SHA-256 of a DER certificate's SubjectPublicKeyInfo (the form ``spki_pins`` hold)."""
    public_key = x509.load_der_x509_certificate(certificate_der).public_key()
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def spki_pins_clean(pins: Iterable[str] | None) -> list[str]:
    """Normalised pins (``sha256/`` prefixes dropped, duplicates removed) or a ValidationError."""
    if pins is None:
        return []
    if isinstance(pins, str) or not isinstance(pins, Iterable):
        raise ValidationError("SPKI pins are a list of base64 SHA-256 hashes.")
    cleaned: list[str] = []
    for pin in pins:
        text = str(pin).strip().removeprefix("sha256/")
        try:
            digest = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 32:
            raise ValidationError(f"{text[:60]!r} is not a base64 SHA-256 hash (44 characters, ending in =).")
        if text not in cleaned:
            cleaned.append(text)
    return cleaned


class OutboundError(Exception):
    """A call refused or failed. The message names the endpoint and the reason, never the
    request's header values or body."""

    def __init__(self, message: str, *, refused: bool = False):
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class OutboundResponse:
    """A response: status, headers, the body (at most the client's cap) and the final URL."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    url: str

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


class OutboundClient:
    """Calls endpoints over verified TLS 1.2+, inside the network boundary.

    ``organization`` chooses the allow-list that applies besides the operator's; ``cadata`` (PEM)
    replaces the system's trusted certificate authorities, for a private CA. Refusals (boundary,
    redirects, TLS, pins) go to ``record_refusal`` before the ``OutboundError`` is raised.
    """

    def __init__(
        self,
        *,
        organization: Any,
        spki_pins: Iterable[str] = (),
        timeout: float = 10.0,
        max_response_bytes: int = 10 * 1024 * 1024,
        max_redirects: int = 5,
        resolver: Resolver | None = None,
        cadata: str | None = None,
        record_refusal: RefusalRecorder | None = None,
    ):
        self.organization = organization
        self.record_refusal = record_refusal
        self.spki_pins = tuple(spki_pins_clean(spki_pins))
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.max_redirects = max_redirects
        self.resolver = resolver
        self.cadata = cadata

    def tls_context(self) -> ssl.SSLContext:
        """Certificate and host-name verification on, TLS 1.2 at least."""
        context = (
            ssl.create_default_context(cadata=self.cadata) if self.cadata else ssl.create_default_context()
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, body: bytes | None = None
    ) -> OutboundResponse:
        """Send one request, following up to ``max_redirects`` redirects, each checked anew."""
        method = method.upper()
        if method not in _METHODS:
            raise OutboundError(f"The method {method[:20]!r} is not allowed.")
        headers = _checked_headers(headers or {})
        deadline = time.monotonic() + self.timeout
        endpoint = self._check(url)
        hop = 0
        while True:
            status, reason, response_headers, payload = self._exchange(
                endpoint, method, headers, body, deadline
            )
            location = next((v for k, v in response_headers if k.lower() == "location"), None)
            if status not in _REDIRECTS or location is None:
                return OutboundResponse(status, reason, response_headers, payload, endpoint.shown)
            hop += 1
            if hop > self.max_redirects:
                raise self._refused(
                    f"Too many redirects (more than {self.max_redirects}) from {endpoint.shown}.",
                    endpoint.shown,
                )
            following = self._check(location, origin=endpoint, hop=hop)
            if following.origin != endpoint.origin:
                headers = {}  # the caller's headers (tokens) were meant for the first origin only
                if status in (307, 308) and body:
                    # These redirects repeat the request with its body (a client secret, a form):
                    # never towards another origin.
                    raise self._refused(
                        f"{endpoint.shown} redirected a request with a body to another origin; refused.",
                        endpoint.shown,
                    )
            if status == 303 or (status in (301, 302) and method not in ("GET", "HEAD")):
                method, body = "GET", None
            endpoint = following

    def _check(self, url: str, *, origin: CheckedEndpoint | None = None, hop: int = 0) -> CheckedEndpoint:
        """Check the first URL, or a redirect's Location relative to ``origin``; record refusals."""
        try:
            if origin is not None:
                url = urljoin(origin.url, url)
            return endpoint_check(url, organization=self.organization, resolver=self.resolver)
        except (ValidationError, ValueError) as error:
            reason = (
                " ".join(error.messages) if isinstance(error, ValidationError) else "The URL is malformed."
            )
            if origin is None:
                raise self._refused(f"The endpoint was refused: {reason}", url_shown(url)) from None
            raise self._refused(
                f"The redirect from {origin.shown} (hop {hop}) was refused: {reason}", url_shown(url)
            ) from None

    def _exchange(self, endpoint, method, headers, body, deadline) -> tuple[int, str, tuple, bytes]:
        connection = _CheckedConnection(endpoint, client=self, timeout=_remaining(deadline, endpoint))
        try:
            connection.request(method, endpoint.target, body=body, headers=dict(headers))
            response = connection.getresponse()
            payload = self._read(response, endpoint, deadline)
            return response.status, response.reason, tuple(response.getheaders()), payload
        except OutboundError:
            raise
        except ssl.SSLCertVerificationError as error:
            raise self._refused(
                f"The certificate of {endpoint.shown} was not accepted: {error.verify_message}.",
                endpoint.shown,
            ) from None
        except ssl.SSLError as error:
            raise self._refused(
                f"The TLS handshake with {endpoint.shown} failed ({error.reason or 'TLS error'}); "
                "TLS 1.2 or newer with a trusted certificate is required.",
                endpoint.shown,
            ) from None
        except TimeoutError:
            raise OutboundError(f"{endpoint.shown} did not answer in time.") from None
        except http.client.HTTPException as error:
            raise OutboundError(
                f"{endpoint.shown} sent an invalid HTTP response ({type(error).__name__})."
            ) from None
        except OSError as error:
            raise OutboundError(
                f"Could not reach {endpoint.shown}: {error.strerror or type(error).__name__}."
            ) from None
        finally:
            connection.close()

    def _read(self, response: http.client.HTTPResponse, endpoint: CheckedEndpoint, deadline: float) -> bytes:
        cap = self.max_response_bytes
        declared = response.getheader("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise OutboundError(f"The response of {endpoint.shown} is larger than the cap of {cap} bytes.")
        chunks, total = [], 0
        while chunk := response.read(min(65536, cap + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise OutboundError(
                    f"The response of {endpoint.shown} is larger than the cap of {cap} bytes."
                )
            if time.monotonic() > deadline:
                raise OutboundError(f"{endpoint.shown} did not answer in time.")
        return b"".join(chunks)

    def _refused(self, message: str, shown: str) -> OutboundError:
        """Hand the refusal to ``record_refusal`` and return the error to raise."""
        if self.record_refusal is not None:
            self.record_refusal(message, shown)
        return OutboundError(message, refused=True)

    def open_socket(self, endpoint: CheckedEndpoint, timeout: float) -> socket.socket:
        """A connection to one of the endpoint's checked addresses (no DNS lookup): verified TLS,
        or plain TCP to a host the operator allows over ``http``."""
        if endpoint.scheme == "http":
            return self._connect(endpoint, timeout)
        return self.open_tls(endpoint, timeout)

    def _connect(self, endpoint: CheckedEndpoint, timeout: float) -> socket.socket:
        last_error: OSError | None = None
        for address in endpoint.addresses:
            try:
                return socket.create_connection((str(address), endpoint.port), timeout=timeout)
            except OSError as error:
                last_error = error
        raise last_error or OSError("no address to connect to")

    def open_tls(self, endpoint: CheckedEndpoint, timeout: float) -> ssl.SSLSocket:
        """A verified TLS connection to one of the endpoint's checked addresses (no DNS lookup)."""
        context = self.tls_context()
        last_error: OSError | None = None
        for address in endpoint.addresses:
            try:
                raw = socket.create_connection((str(address), endpoint.port), timeout=timeout)
            except OSError as error:
                last_error = error
                continue
            try:
                tls = context.wrap_socket(raw, server_hostname=endpoint.host)
            except BaseException:
                raw.close()
                raise
            self._check_pins(tls, endpoint)
            return tls
        raise last_error or OSError("no address to connect to")

    def _check_pins(self, tls: ssl.SSLSocket, endpoint: CheckedEndpoint) -> None:
        if not self.spki_pins:
            return
        presented = spki_hash(tls.getpeercert(binary_form=True))
        if not any(hmac.compare_digest(presented, pin) for pin in self.spki_pins):
            tls.close()
            raise self._refused(
                f"The public key of {endpoint.shown} matches none of the pinned keys (SPKI pins); "
                f"it presented {presented}.",
                endpoint.shown,
            )


class _CheckedConnection(http.client.HTTPConnection):
    """HTTP over the client's socket to a checked address (verified TLS unless allowed plain)."""

    default_port = 443

    def __init__(self, endpoint: CheckedEndpoint, *, client: OutboundClient, timeout: float):
        super().__init__(endpoint.host, endpoint.port, timeout=timeout)
        self._endpoint = endpoint
        self._client = client

    def connect(self) -> None:
        self.sock = self._client.open_socket(self._endpoint, self.timeout)


def _remaining(deadline: float, endpoint: CheckedEndpoint) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OutboundError(f"{endpoint.shown} did not answer in time.")
    return remaining


def _checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers safe to send; a refusal names the header, never its value."""
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise OutboundError("A header name is not a valid HTTP token.")
        if name.lower() == "host":
            raise OutboundError("The Host header is set by the client from the checked endpoint.")
        text = str(value)
        if any(ch in text for ch in "\r\n\0"):
            raise OutboundError(
                f"The value of the header {name} contains a line break or NUL; it was not sent."
            )
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            raise OutboundError(
                f"The value of the header {name} is not Latin-1 text; it was not sent."
            ) from None
        checked[name] = text
    return checked
