"""Request-scoped middleware: request id, actor context, denial auditing, security headers."""

from __future__ import annotations

import logging
import re
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from governance.context import ActorContext, _current, current_context

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_MAX_USER_AGENT = 300


def _client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: a forwarded-for header is client-controlled unless a trusted proxy
    # rewrites it, and then the proxy sets REMOTE_ADDR through the WSGI server's own option.
    return request.META.get("REMOTE_ADDR") or None


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
    The browser goes back to the login page with the reason; an API call gets a 401."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        ended = self._check(request)
        if ended is not None:
            return ended
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        from accounts.models import UserSession
        from accounts.sessions import session_ref_of, session_seen, session_start, session_timeouts_apply

        session = getattr(request, "session", None)
        key = getattr(session, "session_key", None)
        if key is None or not request.user.is_authenticated:
            return None
        row = UserSession.objects.filter(session_ref=session_ref_of(key)).first()
        if row is None:  # a session from before session control: recorded from now on
            row = session_start(user=request.user, session_key=key, ip=_client_ip(request),
                                user_agent=request.headers.get("User-Agent", ""))  # fmt: skip
        if row.ended_at is None and session_timeouts_apply(row=row) is None:
            session_seen(row=row)
            return None
        row.refresh_from_db()
        return _signed_out(request, row.get_end_reason_display())


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
