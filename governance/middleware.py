"""Request-scoped middleware: request id, actor context, denial auditing, security headers."""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from governance.context import ActorContext, _current, current_context

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


def _client_ip(request: HttpRequest) -> str | None:
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
            ip=_client_ip(request),
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


class ActorContextMiddleware:
    """Name the authenticated user in the context and record refused sensitive actions.

    The decision point notes each denial of a sensitive action in the context. When the
    response is a refusal (403), those denials go to the ledger: by then the transaction of the
    refused operation has been rolled back, so the denial record is not lost with it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        context = current_context()
        user = getattr(request, "user", None)
        if context is not None and user is not None and user.is_authenticated:
            context.actor = user
        response = self.get_response(request)
        sensitive = (
            [decision for decision in context.denials if decision.sensitive] if context is not None else []
        )
        if sensitive and response.status_code == 403:
            from audit.services import denials_record

            denials_record(decisions=sensitive)
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


class CryptoErrorMiddleware:
    """A request that meets unavailable keys or a value that does not decrypt gets a page saying
    so (503, 410 or 500) instead of a bare server error; the log gets the operator's detail."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.template.response import TemplateResponse

        from governance.crypto.errors import CryptoError, explain

        if not isinstance(exception, CryptoError):
            return None
        status, message = explain(exception)
        logging.getLogger("governance.crypto").error("%s: %s", type(exception).__name__, exception)
        context = {"message": message, "request_id": getattr(request, "request_id", "")}
        response = TemplateResponse(request, "crypto_error.html", context, status=status)
        return response.render()


class SessionControlMiddleware:
    """Ends a signed-in session whose record says so: ended by its user or an administrator,
    past its idle or absolute timeout, over the concurrency limit, or of a deactivated account.
    The browser goes back to the login page with the reason; an API call gets a 401.

    It also enforces conditional access (``accounts.conditional``): a sign-in refused by it is
    signed out with its own response, and a live session whose address changes is weighed again.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        ended = self._check(request)
        if ended is not None:
            return ended
        response = self.get_response(request)
        if _access_denied(request):  # the sign-in of this very request was refused
            return _refused(request)
        return response

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        from accounts.models import UserSession
        from accounts.sessions import session_ref_of, session_seen, session_start, session_timeouts_apply

        session = getattr(request, "session", None)
        key = getattr(session, "session_key", None)
        if key is None or not request.user.is_authenticated:
            return None
        if _access_denied(request):
            return _refused(request)
        row = UserSession.objects.filter(session_ref=session_ref_of(key)).first()
        if row is None:  # a session from before session control: recorded from now on
            row = session_start(
                user=request.user,
                session_key=key,
                ip=_client_ip(request),
                user_agent=request.headers.get("User-Agent", ""),
            )
        if row.ended_at is None and session_timeouts_apply(row=row) is None:
            session_seen(row=row)
            return _network_check(request, row)
        row.refresh_from_db()
        return _signed_out(request, row.get_end_reason_display())


def _access_denied(request: HttpRequest) -> bool:
    from accounts.receivers import ACCESS_DENIED

    session = getattr(request, "session", None)
    return bool(session is not None and session.get(ACCESS_DENIED))


def _network_check(request: HttpRequest, row) -> HttpResponse | None:
    """Weigh a live session again when it is used from another address than it was weighed from."""
    from accounts.conditional import Outcomes, conditional_access_evaluate
    from accounts.mfa import mfa_step_up_demand
    from accounts.models import SessionEnd
    from accounts.receivers import ACCESS_CHECKED_ADDRESS
    from accounts.sessions import session_end

    address = _client_ip(request) or ""
    checked = request.session.get(ACCESS_CHECKED_ADDRESS)
    if checked == address:
        return None
    request.session[ACCESS_CHECKED_ADDRESS] = address
    if checked is None:  # a session from before conditional access: this address is its baseline
        return None
    # The session's own row is history too: where it started is this person's known network.
    decision = conditional_access_evaluate(user=request.user, request=request, trigger="network_change")
    if decision is None or decision.outcome == Outcomes.ALLOW:
        return None
    if decision.outcome == Outcomes.STEP_UP and mfa_step_up_demand(request):
        return None
    # Refused, or a step-up that this person has no local device for.
    session_end(actor=None, row=row, reason=SessionEnd.CONDITIONAL)
    return _signed_out(request, SessionEnd.CONDITIONAL.label)


REFUSED_MESSAGE = (
    "Sign-in was refused by your organisation's access policy. "
    "If you think this is wrong, contact your administrator."
)


def _refused(request: HttpRequest) -> HttpResponse:
    """Sign out a session whose sign-in conditional access refused; say so without the rule."""
    from django.contrib import messages
    from django.contrib.auth import logout
    from django.http import HttpResponseRedirect, JsonResponse
    from django.urls import reverse

    logout(request)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": REFUSED_MESSAGE}, status=403)
    messages.error(request, REFUSED_MESSAGE)
    return HttpResponseRedirect(reverse("account_login"))


def _signed_out(request: HttpRequest, reason: str) -> HttpResponse:
    from django.contrib import messages
    from django.contrib.auth import logout
    from django.http import HttpResponseRedirect, JsonResponse
    from django.urls import reverse

    logout(request)
    message = f"Your session has ended ({reason.lower()}). Please sign in again."
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=401)
    messages.warning(request, message)
    return HttpResponseRedirect(f"{reverse('account_login')}?next={request.path}")
