"""django-allauth's server-side fetches through the network boundary.

allauth fetches with a ``requests`` session that the socialaccount adapter hands out
(``get_requests_session``): OpenID Connect discovery (``<issuer>/.well-known/openid-configuration``),
the token endpoint, userinfo and the JWKS. The session made here sends every one of them through the
kernel's ``OutboundClient``: the URL (and each redirect) is checked after DNS against the network
boundary and the connection goes to the address that was checked. A refused fetch raises
``BoundaryRefusedError``, a ``requests`` exception, so allauth's own error handling applies.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from governance.core.outbound.client import OutboundClient, OutboundError

# Discovery documents and key sets are small; a larger answer is not one.
MAX_RESPONSE_BYTES = 1024 * 1024
# Headers the client sets itself, or that would ask for an encoding nothing here decodes.
_DROPPED_HEADERS = frozenset({"host", "accept-encoding", "connection", "content-length"})


class BoundaryRefusedError(requests.exceptions.ConnectionError):
    """The network boundary refused the URL (or a redirect): nothing was sent to it."""


class BoundaryTransport(BaseAdapter):
    """A ``requests`` transport that fetches through the boundary's client for one organisation."""

    def __init__(self, *, organization_id: Any, timeout: float):
        super().__init__()
        self.organization_id = organization_id
        self.timeout = timeout

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        """Send ``request`` (a prepared request) through the boundary; ``verify`` cannot turn
        certificate checks off and proxies are never used."""
        client = OutboundClient(
            organization=self.organization_id,
            timeout=_seconds(timeout, self.timeout),
            max_response_bytes=MAX_RESPONSE_BYTES,
        )
        headers = {
            name: value for name, value in request.headers.items() if name.lower() not in _DROPPED_HEADERS
        }
        headers["Accept-Encoding"] = "identity"
        body = request.body.encode("utf-8") if isinstance(request.body, str) else request.body
        try:
            answer = client.request(request.method, request.url, headers=headers, body=body)
        except OutboundError as error:
            exception = BoundaryRefusedError if error.refused else requests.exceptions.ConnectionError
            raise exception(str(error), request=request) from None
        response = requests.Response()
        response.status_code = answer.status
        response.reason = answer.reason
        response.headers = CaseInsensitiveDict(answer.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response._content = answer.body
        response.url = answer.url
        response.request = request
        response.connection = self
        return response

    def close(self) -> None:
        """Nothing is pooled: each request opens and closes its own connection."""


def boundary_session(*, organization_id: Any, timeout: float) -> requests.Session:
    """A ``requests`` session whose every request goes through the network boundary.

    ``organization_id`` chooses the organisation's allow-list (besides the operator's); redirects
    are followed, and checked, by the boundary's client; the environment's proxies are ignored.
    """
    session = requests.Session()
    session.trust_env = False
    transport = BoundaryTransport(organization_id=organization_id, timeout=timeout)
    session.mount("https://", transport)
    session.mount("http://", transport)
    return session


def _seconds(timeout: Any, default: float) -> float:
    """``requests``' timeout (seconds, a (connect, read) pair, or None) as one overall limit."""
    if isinstance(timeout, tuple):
        parts = [part for part in timeout if part is not None]
        return float(sum(parts)) if parts else default
    return float(timeout) if timeout is not None else default
