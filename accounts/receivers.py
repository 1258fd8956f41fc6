"""Session records from Django's login and logout signals (allauth signs in through them)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from accounts.models import SessionEnd, UserSession
from accounts.sessions import session_end, session_ref_of, session_start


def _key(request) -> str | None:
    session = getattr(request, "session", None)
    return getattr(session, "session_key", None)


@receiver(user_logged_in, dispatch_uid="accounts.session_start")
def start_session(sender, request, user, **kwargs) -> None:
    key = _key(request)
    if key is None:
        return
    from governance.middleware import _client_ip

    session_start(user=user, session_key=key, ip=_client_ip(request),
                  user_agent=request.headers.get("User-Agent", ""))  # fmt: skip


@receiver(user_logged_out, dispatch_uid="accounts.session_end")
def end_session(sender, request, user, **kwargs) -> None:
    key = _key(request)
    if key is None or user is None:
        return
    row = UserSession.objects.filter(session_ref=session_ref_of(key), ended_at__isnull=True).first()
    if row is not None:
        session_end(actor=user, row=row, reason=SessionEnd.LOGOUT)
