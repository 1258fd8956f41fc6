"""Authentication events from Django's signals (allauth signs in through django.contrib.auth)."""

from __future__ import annotations

import hashlib

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from audit.models import Outcome
from audit.services import audit_event_record


def _session_ref(request) -> str:
    # A digest, not the key: it correlates a session's start and end without revealing it.
    key = getattr(getattr(request, "session", None), "session_key", None)
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else ""


@receiver(user_logged_in, dispatch_uid="audit.login")
def record_login(sender, request, user, **kwargs) -> None:
    with transaction.atomic():
        audit_event_record(
            action="auth.login",
            actor=user,
            target=user,
            organization_id=user.organization_id,
            data={
                "session": _session_ref(request),
                "method": getattr(request, "portal_login_method", "password"),
            },
        )


@receiver(user_logged_out, dispatch_uid="audit.logout")
def record_logout(sender, request, user, **kwargs) -> None:
    if user is None:
        return
    with transaction.atomic():
        audit_event_record(
            action="auth.logout",
            actor=user,
            target=user,
            organization_id=user.organization_id,
            data={"session": _session_ref(request)},
        )


@receiver(user_login_failed, dispatch_uid="audit.login_failed")
def record_login_failure(sender, credentials, request=None, **kwargs) -> None:
    # Django masks secrets in ``credentials``; only the identifier is kept, trimmed.
    login = str(credentials.get("email") or credentials.get("username") or "")[:254]
    if "@" not in login or " " in login:
        # Not shaped like an address: perhaps a password typed into the wrong field. Keep a digest.
        login = "sha256:" + hashlib.sha256(login.encode()).hexdigest()[:16]
    # The reason when a backend gave one (e.g. the organisation allows SSO only).
    reason = getattr(request, "portal_login_refusal", None) or "bad_credentials"
    with transaction.atomic():
        audit_event_record(
            action="auth.login_failed",
            actor=None,
            outcome=Outcome.FAILED,
            data={"login": login, "reason": reason},
        )
