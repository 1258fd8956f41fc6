"""Session control: every session recorded, idle and absolute timeouts, a concurrency limit,
sessions ended by their user or by an administrator (who also revokes the user's API tokens).

Services here write their ledger events in the same transaction (``session.started``,
``session.ended`` with the reason, ``session.forced_end``). The per-request checks live in
``SessionControlMiddleware``; they end a session whose row was ended elsewhere.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from knox.models import AuthToken

from accounts.events import AccountEvent
from accounts.models import SessionEnd, User, UserSession
from audit.services import audit_event_record, audited_transaction
from governance.access.decision import require

LAST_SEEN_PRECISION = timedelta(seconds=60)  # last_seen is written at most once a minute


def session_ref_of(session_key: str) -> str:
    """The digest that names a Django session in the ledger and in ``UserSession``."""
    return hashlib.sha256(session_key.encode()).hexdigest()


def _event(action: str, *, actor, row: UserSession, **data) -> None:
    audit_event_record(
        action=action,
        actor=actor,
        target=row.user,
        organization_id=row.user.organization_id,
        data={"session": row.session_ref[:16], **data},
    )


def session_start(
    *, user: User, session_key: str, ip: str | None, user_agent: str, country: str = ""
) -> UserSession:
    """Record a new session; past the limit, end the oldest or refuse this one (as configured)."""
    limit = settings.SESSION_CONCURRENCY_LIMIT
    with audited_transaction():
        User.objects.select_for_update().filter(pk=user.pk).first()  # one login at a time per user
        row = UserSession.objects.create(
            user=user,
            session_ref=session_ref_of(session_key),
            ip=ip,
            country=country,
            user_agent=user_agent[:300],
        )
        _event(AccountEvent.SESSION_STARTED, actor=user, row=row, ip=ip)
        live = list(
            UserSession.objects.filter(user=user, ended_at__isnull=True)
            .exclude(pk=row.pk)
            .order_by("created_at")
        )
        excess = len(live) + 1 - limit
        if limit and excess > 0:
            if settings.SESSION_LIMIT_POLICY == "refuse":
                _end(row, SessionEnd.REFUSED, actor=user, data={"limit": limit})
            else:
                for oldest in live[:excess]:
                    _end(oldest, SessionEnd.LIMIT, actor=user, data={"limit": limit})
    return row


def _end(row: UserSession, reason: str, *, actor, data: dict | None = None) -> None:
    row.ended_at, row.end_reason = timezone.now(), reason
    row.save(update_fields=["ended_at", "end_reason"])
    _event(AccountEvent.SESSION_ENDED, actor=actor, row=row, reason=reason, **(data or {}))


def session_end(*, actor, row: UserSession, reason: str = SessionEnd.ENDED_BY_USER) -> UserSession:
    """End one session: its own user may, from any of their sessions; anyone else needs user.manage."""
    with audited_transaction():
        row = UserSession.objects.select_for_update().select_related("user").get(pk=row.pk)
        if actor is not None and actor.pk != row.user_id:
            require(actor, "user.manage", row.user, fresh=True)
        if row.ended_at is None:
            _end(row, reason, actor=actor)
    return row


def session_timeouts_apply(*, row: UserSession, now=None) -> str | None:
    """End the session if it has been idle or open too long; return the reason, or None."""
    now = now or timezone.now()
    reason = None
    if now - row.created_at > timedelta(seconds=settings.SESSION_ABSOLUTE_TIMEOUT):
        reason = SessionEnd.ABSOLUTE
    elif now - row.last_seen_at > timedelta(seconds=settings.SESSION_IDLE_TIMEOUT):
        reason = SessionEnd.IDLE
    if reason is not None:
        with audited_transaction():
            locked = UserSession.objects.select_for_update().select_related("user").get(pk=row.pk)
            if locked.ended_at is None:
                _end(locked, reason, actor=None)
    return reason


def session_seen(*, row: UserSession, now=None) -> None:
    """Move ``last_seen_at`` on (at most once a minute: one small UPDATE, not one per request)."""
    now = now or timezone.now()
    if now - row.last_seen_at >= LAST_SEEN_PRECISION:
        UserSession.objects.filter(pk=row.pk).update(last_seen_at=now)


def user_sessions_end_all(*, actor, user: User, reason: str = SessionEnd.FORCED) -> int:
    """Force logout: end every live session of ``user`` and revoke their API tokens, at once."""
    with audited_transaction():
        user = User.objects.select_for_update().get(pk=user.pk)
        if actor is not None:
            require(actor, "user.manage", user, fresh=True)
        now = timezone.now()
        live = UserSession.objects.filter(user=user, ended_at__isnull=True)
        refs = [ref[:16] for ref in live.values_list("session_ref", flat=True)]
        ended = live.update(ended_at=now, end_reason=reason)
        tokens, _ = AuthToken.objects.filter(user=user).delete()
        audit_event_record(
            action=AccountEvent.SESSION_FORCED_END,
            actor=actor,
            target=user,
            organization_id=user.organization_id,
            data={"reason": reason, "sessions": refs, "api_tokens_revoked": tokens},
        )
    return ended
