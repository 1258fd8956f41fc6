"""Authentication events from Django's signals (allauth signs in through django.contrib.auth).

Failed sign-ins and lockouts are recorded by ``accounts.receivers`` (see ``accounts.lockout``)."""

from __future__ import annotations

import hashlib

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db import transaction
from django.dispatch import receiver

from audit.services import audit_event_record


def _session_ref(request) -> str:
    # A digest, not the key: it correlates a session's start and end without revealing it.
    key = getattr(getattr(request, "session", None), "session_key", None)
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else ""


@receiver(user_logged_in, dispatch_uid="audit.login")
def record_login(sender, request, user, **kwargs) -> None:
    with transaction.atomic():
        audit_event_record(
            action="login.succeeded",
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
