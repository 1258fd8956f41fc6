"""Request-scoped middleware of the kernel: the client's address, request id and context, security
headers, and pages for errors that explain themselves."""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from governance.core.context import ActorContext, _current, current_context
from governance.core.errors import ExplainedError

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_MAX_USER_AGENT = 300


_COUNTRY = re.compile(r"^[A-Z]{2}$")


@lru_cache(maxsize=4)
def _proxy_networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _is_trusted_proxy(address: str | None) -> bool:
    proxies = tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ())
    if not address or not proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _proxy_networks(proxies))


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR, unless it is one of TRUSTED_PROXIES: then the nearest X-Forwarded-For hop that
    # is not itself a trusted proxy. A forwarded-for header from any other peer is client-controlled
    # and ignored.
    remote = request.META.get("REMOTE_ADDR") or None
    if not _is_trusted_proxy(remote):
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops[-20:]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return remote  # a malformed chain: believe only the proxy itself
        if not _is_trusted_proxy(hop):
            return hop
    return remote


def client_country(request: HttpRequest) -> str | None:
    """The two-letter country a trusted proxy says the request came from, or None.

    Only a request whose peer is one of ``TRUSTED_PROXIES`` is believed; the portal ships no
    GeoIP database, so without such a proxy the country is unknown.
    """
    if not _is_trusted_proxy(request.META.get("REMOTE_ADDR")):
        return None
    value = request.headers.get(settings.CONDITIONAL_ACCESS_COUNTRY_HEADER, "").strip().upper()
    return value if _COUNTRY.match(value) else None


class RequestContextMiddleware:
    """Give every request an id (kept from X-Request-ID when well-formed) and bind its context."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        context = ActorContext(
            request_id=request_id,
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:_MAX_USER_AGENT],
        )
        request.request_id = request_id
        token = _current.set(context)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response["X-Request-ID"] = request_id
        return response


class ContentSecurityPolicyMiddleware:
    """Send the Content-Security-Policy header from settings on every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response


class RequestContextLogFilter(logging.Filter):
    """Add ``request_id`` to every log record ('-' outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current_context()
        record.request_id = context.request_id if context else "-"
        return True


class ClientErrorLogFilter(logging.Filter):
    """A refused request (4xx) is logged as one line with its reason, not a traceback.

    Django logs a 403 or 400 raised as an exception with the exception attached, so every refusal
    printed a traceback as if the server had failed. The reason stays; the traceback is kept for
    server errors only.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500 and record.exc_info:
            exception = record.exc_info[1]
            reason = str(exception) if exception is not None else ""
            record.msg = f"{record.getMessage()}{f' ({reason})' if reason else ''}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


class ExplainedErrorMiddleware:
    """A request that meets an error which explains itself (unavailable keys, a value that does not
    decrypt) gets a page saying so (503, 410 or 500) instead of a bare server error; the log gets
    the operator's detail."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, ExplainedError):
            return None
        status, message = exception.explain()
        logging.getLogger(exception.log_name).error("%s: %s", type(exception).__name__, exception)
        context = {"message": message, "request_id": getattr(request, "request_id", "")}
        response = TemplateResponse(request, "crypto_error.html", context, status=status)
        return response.render()


# Paths whose clients read JSON: they answer an oversized body in their own format (a JSON 413).
_MACHINE_PATHS = ("/api/", "/scim/", "/hooks/")
_logger = logging.getLogger(__name__)


class OversizedFormMiddleware:
    """A form post larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` gets a page that says so (413),
    before anything reads the body — rather than a bare 400, or Django's debug page in
    development. It goes before the CSRF middleware, the first to read a form. Multipart posts
    are left to Django: their files do not count against the limit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if (
            limit is not None
            and request.method in ("POST", "PUT", "PATCH")
            and not request.path.startswith(_MACHINE_PATHS)
            and not request.content_type.startswith("multipart/")
        ):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                _logger.warning("Refused a form of %d bytes at %s (limit %d).", length, request.path, limit)
                response = TemplateResponse(
                    request, "413.html", {"size": length, "limit": limit, "back": request.path}, status=413
                )
                # No "Connection: close": it is a hop-by-hop header, which the development server
                # of the quick start refuses from an application (a 500 instead of this page) and
                # gunicorn drops. Both read and discard the unread body before the next request.
                return response.render()
        return self.get_response(request)
