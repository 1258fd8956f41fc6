"""Brute-force protection around django-axes: who an attempt is counted against, the lockout
page, the ledger records of failed sign-ins and lockouts, and an administrator's unlock.

Accounts are counted by a keyed digest of the identifier typed in, whether or not an account
has it: an unknown address locks exactly as a known one does, and the lockout page is the same
for both. The raw identifier is never stored by axes nor written to the ledger.
"""

from __future__ import annotations

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.events import AccountEvent
from accounts.models import User
from audit.models import Outcome
from audit.services import audit_event_record, audited_transaction
from governance.access.decision import require
from governance.core.middleware import client_ip

_DIGEST_SALT = "accounts.lockout.identifier"
_IDENTIFIER_FIELDS = ("email", "username", "login")

# Set on a request by ``LockoutBackend`` when it refused the attempt because of a lockout (before
# any signal runs, so receivers need not depend on their order).
REFUSED_LOCKED = "sign_in_refused_locked"

LOCKOUT_MESSAGE = (
    "Too many failed sign-in attempts. Sign-in is paused for a while; try again later, "
    "or ask an administrator to unlock your account."
)


class FailureReason:
    BAD_CREDENTIALS = "bad_credentials"
    INACTIVE = "inactive"
    LOCKED_OUT = "locked_out"
    NO_CONTROL_PANEL_ROLE = "no_control_panel_role"


def identifier_normalize(raw: object) -> str:
    return str(raw or "").strip().lower()[:254]


def identifier_digest(raw: object) -> str:
    """A keyed digest (HMAC-SHA256 under SECRET_KEY) of a typed sign-in identifier."""
    return "id:" + salted_hmac(_DIGEST_SALT, identifier_normalize(raw), algorithm="sha256").hexdigest()[:40]


def _typed_identifier(request: HttpRequest | None, credentials: dict | None) -> str:
    for name in _IDENTIFIER_FIELDS:
        value = (credentials or {}).get(name)
        if value:
            return str(value)
    post = getattr(request, "POST", None) or {}
    for name in _IDENTIFIER_FIELDS:
        if post.get(name):
            return str(post[name])
    return ""


def attempt_identifier(request: HttpRequest | None, credentials: dict | None) -> str:
    """AXES_USERNAME_CALLABLE: the account an attempt counts against, as a digest."""
    return identifier_digest(_typed_identifier(request, credentials))


def attempt_address(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the same client address the rest of the portal records."""
    return client_ip(request)


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: one page for every locked-out attempt (429), whatever was typed;
    it names neither the account nor whether it exists, nor which limit was reached."""
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    context = {"message": LOCKOUT_MESSAGE, "minutes": minutes}
    return TemplateResponse(request, "accounts/lockout.html", context, status=429).render()


def login_failure_record(*, request: HttpRequest | None, credentials: dict, surface: str) -> None:
    """Write ``login.failed`` with its reason.

    The same work for every attempt — one indexed look-up, one keyed digest, one INSERT — so the
    record itself does not tell known accounts from unknown ones by its timing.
    """
    typed = _typed_identifier(None, credentials)
    # display_name too: the event's label reads it, and a deferred field would cost a second
    # query for known accounts only.
    user = (
        User.objects.filter(email=identifier_normalize(typed))
        .only("pk", "email", "display_name", "organization_id", "is_active")
        .first()
    )
    if getattr(request, REFUSED_LOCKED, False):
        reason = FailureReason.LOCKED_OUT
    elif getattr(request, "portal_login_refusal", None):  # e.g. the organisation allows SSO only
        reason = request.portal_login_refusal
    elif user is not None and not user.is_active:
        reason = FailureReason.INACTIVE
    else:
        reason = FailureReason.BAD_CREDENTIALS
    _failed(user=user, digest=identifier_digest(typed), reason=reason, surface=surface)


def login_refusal_record(*, user: User, reason: str, surface: str) -> None:
    """Write ``login.failed`` for right credentials refused afterwards (e.g. no control-panel role)."""
    _failed(user=user, digest=identifier_digest(user.email), reason=reason, surface=surface)


def _failed(*, user: User | None, digest: str, reason: str, surface: str) -> None:
    with audited_transaction():
        audit_event_record(
            action=AccountEvent.LOGIN_FAILED,
            actor=None,
            target=user,
            outcome=Outcome.FAILED,
            organization_id=user.organization_id if user is not None else None,
            data={"reason": reason, "identifier": digest, "surface": surface},
        )


def lockout_record(*, request: HttpRequest | None, identifier: str | None) -> None:
    """Write ``login.locked_out`` when a lockout begins (not for each refused attempt during it)."""
    if request is None or getattr(request, REFUSED_LOCKED, False):
        return  # an attempt refused during a lockout already recorded
    user = _user_of_digest(request, identifier)
    with audited_transaction():
        audit_event_record(
            action=AccountEvent.LOGIN_LOCKED_OUT,
            actor=None,
            target=user,
            outcome=Outcome.DENIED,
            organization_id=user.organization_id if user is not None else None,
            data={
                "identifier": identifier or "",
                "failures": request.axes_failures_since_start,
                "limit": settings.AXES_FAILURE_LIMIT,
                "cool_off_seconds": int(settings.AXES_COOLOFF_TIME.total_seconds()),
            },
        )


def _user_of_digest(request: HttpRequest, identifier: str | None) -> User | None:
    typed = _typed_identifier(request, getattr(request, "axes_credentials", None))
    if not identifier or identifier_digest(typed) != identifier:
        return None
    return User.objects.filter(email=identifier_normalize(typed)).first()


def account_failures(*, user: User) -> int:
    """Failed sign-ins counted against the account now (within the cool-off)."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    attempts = AccessAttempt.objects.filter(username=identifier_digest(user.email), attempt_time__gte=since)
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


def account_failures_clear(*, user: User) -> int:
    """A successful sign-in forgets its account's failures (from every address), never other
    accounts' failures from its address: signing in to an account of one's own does not reset
    the count of an address that tried others."""
    deleted, _ = AccessAttempt.objects.filter(username=identifier_digest(user.email)).delete()
    return deleted


def locked_digests(digests: list[str]) -> set[str]:
    """Which of these account digests are locked out now (one query, for the user list)."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    rows = (
        AccessAttempt.objects.filter(username__in=digests, attempt_time__gte=since)
        .values("username")
        .annotate(total=Sum("failures_since_start"))
        .filter(total__gte=settings.AXES_FAILURE_LIMIT)
    )
    return {row["username"] for row in rows}


def user_sign_in_unlock(*, actor, user: User, address: str | None = None) -> int:
    """Lift a lockout: the account's failed attempts are forgotten (and those of ``address``,
    when given). Needs ``user.manage``; recorded as ``login.unlocked``."""
    with audited_transaction():
        user = User.objects.select_for_update().get(pk=user.pk)
        require(actor, "user.manage", user, fresh=True)
        digest = identifier_digest(user.email)
        cleared, _ = AccessAttempt.objects.filter(username=digest).delete()
        if address:
            more, _ = AccessAttempt.objects.filter(ip_address=address).delete()
            cleared += more
        audit_event_record(
            action=AccountEvent.LOGIN_UNLOCKED,
            actor=actor,
            target=user,
            organization_id=user.organization_id,
            data={"identifier": digest, "address": address or "", "attempts_cleared": cleared},
        )
    return cleared
