"""MFA enforcement: a signed-in session that has not passed MFA reaches nothing but the way to it."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.http import urlencode

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
        from accounts.mfa import session_is_verified, user_is_enrolled

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
