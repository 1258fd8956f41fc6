"""Session records, conditional access and brute-force records from the signals of frameworks we
do not own: Django's login, logout and failed-login signals (allauth signs in through them),
axes' lockout signal, and allauth's password signals (a changed or reset password revokes the
person's API tokens)."""

from __future__ import annotations

import hashlib

from allauth.account.signals import password_changed, password_reset, password_set
from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from accounts.conditional import STEP_UP_SESSION_KEY, Outcomes, conditional_access_evaluate
from accounts.events import AccountEvent
from accounts.lockout import account_failures_clear, lockout_record, login_failure_record
from accounts.models import SessionEnd, TokenRevocation, UserSession
from accounts.services import api_tokens_revoke_all
from accounts.sessions import session_end, session_ref_of, session_start
from audit.services import audit_event_record
from governance.core.middleware import client_country, client_ip

# The address a session was last weighed from: a request from another one is weighed again.
ACCESS_CHECKED_ADDRESS = "conditional_access_address"
# Set on a session whose sign-in conditional access refused: it is signed out, never used.
ACCESS_DENIED = "conditional_access_denied"


def _key(request) -> str | None:
    session = getattr(request, "session", None)
    return getattr(session, "session_key", None)


@receiver(user_logged_in, dispatch_uid="accounts.session_start")
def start_session(sender, request, user, **kwargs) -> None:
    """Weigh the sign-in (conditional access), then act on the decision: a refusal records no
    session and marks this one refused (``SessionControlMiddleware`` signs it out with the
    response, or at its next request at the latest); a step-up marks the session for the MFA
    enforcement; otherwise the session is recorded and the account's failure count cleared."""
    key = _key(request)
    if key is None:
        return
    decision = conditional_access_evaluate(user=user, request=request, trigger="sign_in")
    if decision is not None and decision.outcome == Outcomes.DENY:
        request.session[ACCESS_DENIED] = True
        return
    ip = client_ip(request)
    session_start(
        user=user,
        session_key=key,
        ip=ip,
        country=client_country(request) or "",
        user_agent=request.headers.get("User-Agent", ""),
    )
    request.session[ACCESS_CHECKED_ADDRESS] = ip or ""
    if decision is not None and decision.outcome == Outcomes.STEP_UP:
        request.session[STEP_UP_SESSION_KEY] = True
    account_failures_clear(user=user)


@receiver(user_logged_out, dispatch_uid="accounts.session_end")
def end_session(sender, request, user, **kwargs) -> None:
    key = _key(request)
    if key is None or user is None:
        return
    row = UserSession.objects.filter(session_ref=session_ref_of(key), ended_at__isnull=True).first()
    if row is not None:
        session_end(actor=user, row=row, reason=SessionEnd.LOGOUT)


@receiver(user_login_failed, dispatch_uid="accounts.login_failed")
def record_login_failure(sender, credentials, request=None, **kwargs) -> None:
    # Django masks secrets in ``credentials``; the identifier is kept only as a keyed digest.
    login_failure_record(request=request, credentials=credentials, surface=_surface(request))


@receiver(user_locked_out, dispatch_uid="accounts.locked_out")
def record_lockout(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    lockout_record(request=request, identifier=username)


@receiver(password_changed, dispatch_uid="accounts.tokens_revoked_on_change")
def revoke_tokens_on_password_change(sender, request, user, **kwargs) -> None:
    """A changed password ends the API tokens issued under the old one."""
    api_tokens_revoke_all(actor=user, user=user, reason=TokenRevocation.PASSWORD_CHANGED)


@receiver(password_set, dispatch_uid="accounts.tokens_revoked_on_set")
def revoke_tokens_on_password_set(sender, request, user, **kwargs) -> None:
    api_tokens_revoke_all(actor=user, user=user, reason=TokenRevocation.PASSWORD_SET)


@receiver(password_reset, dispatch_uid="accounts.tokens_revoked_on_reset")
def revoke_tokens_on_password_reset(sender, request, user, **kwargs) -> None:
    """A reset (by e-mailed key) ends the API tokens too: whoever held the old password, or a
    token made with it, is cut off. The person is not signed in: the system is the actor."""
    api_tokens_revoke_all(actor=None, user=user, reason=TokenRevocation.PASSWORD_RESET)


def _surface(request) -> str:
    path = getattr(request, "path", "") or ""
    return "control_panel" if path.startswith("/admin/") else "sign_in"


# The ledger's records of sign-in and sign-out, after the session records above (receivers run in
# the order they were connected).
def _ledger_session_ref(request) -> str:
    # A digest, not the key: it correlates a session's start and end without revealing it.
    key = getattr(getattr(request, "session", None), "session_key", None)
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else ""


@receiver(user_logged_in, dispatch_uid="accounts.ledger_login")
def record_login(sender, request, user, **kwargs) -> None:
    with transaction.atomic():
        audit_event_record(
            action=AccountEvent.LOGIN_SUCCEEDED,
            actor=user,
            target=user,
            organization_id=user.organization_id,
            data={
                "session": _ledger_session_ref(request),
                "method": getattr(request, "portal_login_method", "password"),
            },
        )


@receiver(user_logged_out, dispatch_uid="accounts.ledger_logout")
def record_logout(sender, request, user, **kwargs) -> None:
    if user is None:
        return
    with transaction.atomic():
        audit_event_record(
            action=AccountEvent.AUTH_LOGOUT,
            actor=user,
            target=user,
            organization_id=user.organization_id,
            data={"session": _ledger_session_ref(request)},
        )
