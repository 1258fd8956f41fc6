"""Session control and MFA enforcement: an ended or timed-out session is signed out, and a
signed-in session that has not passed MFA reaches nothing but the way to it."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.http import urlencode

from accounts.conditional import Outcomes, conditional_access_evaluate
from accounts.mfa import mfa_step_up_demand, session_is_verified, user_is_enrolled
from accounts.models import SessionEnd, UserSession
from accounts.receivers import ACCESS_CHECKED_ADDRESS, ACCESS_DENIED
from accounts.sessions import session_end, session_ref_of, session_seen, session_start, session_timeouts_apply
from governance.core.middleware import client_ip

# The only paths a session without MFA may reach. Everything else — the builders' pages, the
# control panel, session-authenticated API calls, any path added later — is enforced.
_EXEMPT_EXACT = ("/healthz", "/ledger/public-key.pem")
# The MFA device list, removals and new backup codes are not among them: they need a verified
# session. The enrolment page refuses itself to an enrolled person who has not verified.
_EXEMPT_PREFIXES = (
    "/accounts/login/",
    "/accounts/logout/",
    "/accounts/mfa/enrol/",
    "/accounts/mfa/verify/",
    "/accounts/mfa/webauthn/",
)


def path_is_exempt(path: str) -> bool:
    static = "/" + settings.STATIC_URL.lstrip("/")
    return path in _EXEMPT_EXACT or path.startswith((*_EXEMPT_PREFIXES, static))


class MFAEnforcementMiddleware:
    """Send a signed-in person who has not passed MFA in this session to enrolment (no device
    yet: enrolment is forced at first sign-in) or to verification; a session-authenticated API
    call gets a 403 that names MFA. Token-authenticated API calls carry no session user here
    (DRF authenticates them in the view) and pass: their tokens are issued to verified sessions.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self._check(request)
        return refused if refused is not None else self.get_response(request)

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        user = getattr(request, "user", None)
        # path_info: the path inside the portal, whatever prefix (SCRIPT_NAME) a server adds.
        if user is None or not user.is_authenticated or path_is_exempt(request.path_info):
            return None
        if session_is_verified(request):
            return None
        if request.path_info.startswith("/api/"):
            detail = "Multi-factor authentication is required: verify this session at /accounts/mfa/verify/."
            return JsonResponse({"detail": detail, "code": "mfa_required"}, status=403)
        target = "account-mfa-verify" if user_is_enrolled(user) else "account-mfa-enrol"
        query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
        return HttpResponseRedirect(f"{reverse(target)}?{query}" if query else reverse(target))


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
                ip=client_ip(request),
                user_agent=request.headers.get("User-Agent", ""),
            )
        if row.ended_at is None and session_timeouts_apply(row=row) is None:
            session_seen(row=row)
            return _network_check(request, row)
        row.refresh_from_db()
        return _signed_out(request, row.get_end_reason_display())


def _access_denied(request: HttpRequest) -> bool:
    session = getattr(request, "session", None)
    return bool(session is not None and session.get(ACCESS_DENIED))


def _network_check(request: HttpRequest, row) -> HttpResponse | None:
    """Weigh a live session again when it is used from another address than it was weighed from."""
    address = client_ip(request) or ""
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
    logout(request)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": REFUSED_MESSAGE}, status=403)
    messages.error(request, REFUSED_MESSAGE)
    return HttpResponseRedirect(reverse("account_login"))


def _signed_out(request: HttpRequest, reason: str) -> HttpResponse:
    logout(request)
    message = f"Your session has ended ({reason.lower()}). Please sign in again."
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=401)
    messages.warning(request, message)
    return HttpResponseRedirect(f"{reverse('account_login')}?next={request.path}")
