"""Every change to service accounts: creation, tokens, disabling, reactivation, the daily sweep,
and authentication with its ledger events.

Tokens read ``gpsa_<prefix>_<secret>``: the prefix is public and finds the row, the secret is 256
random bits of which only the SHA-256 digest is stored. The plaintext exists once, in the value
``service_account_token_issue`` returns; it is never stored, logged or written to the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NoReturn

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import Outcome
from audit.services import audit_event_record, audited_transaction, denials_record
from governance.access.decision import AccessDenied, decide, require
from governance.core.context import current_context
from governance.core.throttle import FailureThrottle, Lockout
from governance.core.tokens import TokenRefusedError, digest_matches
from workflows.events import WorkflowEvent
from workflows.integrations.models import Integration
from workflows.service_accounts.models import (
    DisabledReason,
    ServiceAccount,
    ServiceAccountToken,
    rotation_ceiling_days,
)
from workflows.service_accounts.principals import SERVICE_ACCOUNT_TOKENS, ServiceAccountPrincipal
from workflows.service_accounts.selectors import dormant_accounts, overdue_accounts, rotation_due_soon


class ServiceAccountAuthenticationError(TokenRefusedError):
    """A service-account token was refused; ``reason`` is for the ledger, never for the caller."""

    refused_message = "The service-account token was refused."


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued token: the stored row and the plaintext, which is shown once and dropped."""

    token: ServiceAccountToken
    plaintext: str = field(repr=False)


@dataclass
class SweepResult:
    """What one sweep did."""

    warned: list[int] = field(default_factory=list)
    disabled_overdue: list[int] = field(default_factory=list)
    disabled_dormant: list[int] = field(default_factory=list)


def _where(account: ServiceAccount) -> dict[str, int]:
    return {"organization_id": account.workspace.organization_id, "workspace_id": account.workspace_id}


def _locked(account: ServiceAccount) -> ServiceAccount:
    return (
        ServiceAccount.objects.select_for_update(of=("self",)).select_related("workspace").get(pk=account.pk)
    )


def _require_recording_denial(actor, action: str, obj) -> None:
    """``require`` before the transaction, with a refusal recorded in the ledger at once.

    The denial is written here (and taken off the request's list, so the middleware does not
    write it twice) because a caller may show the refusal as a message rather than a 403.
    """
    decision = decide(actor, action, obj, fresh=True)
    if decision.allowed:
        return
    if decision.sensitive:
        denials_record(decisions=[decision])
        context = current_context()
        if context is not None and decision in context.denials:
            context.denials.remove(decision)
    raise AccessDenied(decision)


def service_account_create(
    *, actor, integration: Integration, name: str, scopes: list[str], rotation_period_days: int | None = None
) -> ServiceAccount:
    """Create the one service account of ``integration``; a second one for it is refused."""
    with audited_transaction():
        integration = (
            Integration.objects.select_for_update().select_related("workspace").get(pk=integration.pk)
        )
        account = ServiceAccount(
            workspace=integration.workspace,
            integration=integration,
            name=name.strip(),
            scopes=scopes,
            created_by=actor,
            rotation_period_days=rotation_period_days or rotation_ceiling_days(),
        )
        require(actor, "service_account.manage", account, fresh=True)
        existing = ServiceAccount.objects.filter(integration=integration).first()
        if existing is not None:
            raise ValidationError(
                {
                    "integration": (
                        f"{integration} already has its service account ({existing}). Each integration has exactly "
                        "one dedicated account and accounts are never shared: rotate that account's token instead."
                    )
                }
            )
        now = timezone.now()
        account.created_at = account.active_since = now
        account.restart_rotation_clock(now)
        account.last_rotated_at = None  # no token yet: the clock runs from creation
        account.full_clean(exclude=["integration"])  # the one-per-integration check was made above
        account.save()
        audit_event_record(
            action=WorkflowEvent.SERVICE_ACCOUNT_CREATED,
            actor=actor,
            target=account,
            **_where(account),
            data={
                "name": account.name,
                "integration": integration.slug,
                "scopes": account.scopes,
                "rotation_period_days": account.rotation_period_days,
            },
        )
    return account


def service_account_token_issue(
    *, actor, account: ServiceAccount, now: datetime | None = None
) -> IssuedToken:
    """Issue a new token (the first, or a rotation) and return its plaintext, once.

    Tokens in use stay valid for the grace window (``SERVICE_ACCOUNT_ROTATION_GRACE``) so that
    clients switch without downtime; the rotation clock restarts. A disabled account may get a
    token (an overdue account is rotated before it is reactivated); it cannot use it until then.
    """
    now = now or timezone.now()
    with audited_transaction():
        account = _locked(account)
        require(actor, "service_account.manage", account, fresh=True)
        grace_until = now + settings.SERVICE_ACCOUNT_ROTATION_GRACE
        previous = []
        for old in account.tokens.select_for_update().filter(
            revoked_at__isnull=True, grace_until__isnull=True, expires_at__gt=now
        ):
            old.grace_until = min(grace_until, old.expires_at)
            old.save(update_fields=["grace_until"])
            previous.append({"prefix": old.prefix, "grace_until": old.grace_until})
        minted = SERVICE_ACCOUNT_TOKENS.mint(
            prefix_taken=lambda prefix: ServiceAccountToken.objects.filter(prefix=prefix).exists()
        )
        token = ServiceAccountToken.objects.create(
            service_account=account,
            prefix=minted.prefix,
            digest=minted.digest,
            created_at=now,
            expires_at=now + timedelta(days=account.rotation_period_days),
            created_by=actor,
        )
        account.restart_rotation_clock(now)
        account.save(update_fields=["last_rotated_at", "rotation_due_at"])
        audit_event_record(
            action=WorkflowEvent.SERVICE_ACCOUNT_TOKEN_ISSUED,
            actor=actor,
            target=account,
            **_where(account),
            data={"prefix": token.prefix, "expires_at": token.expires_at, "previous_tokens": previous},
        )
    return IssuedToken(token=token, plaintext=minted.plaintext)


def service_account_token_revoke(
    *, actor, token: ServiceAccountToken, reason: str = ""
) -> ServiceAccountToken:
    """Revoke a token at once (no grace): it is refused from now on."""
    with audited_transaction():
        token = ServiceAccountToken.objects.select_for_update().get(pk=token.pk)
        account = ServiceAccount.objects.select_related("workspace").get(pk=token.service_account_id)
        require(actor, "service_account.manage", account, fresh=True)
        if token.revoked_at is not None:
            raise ValidationError({"token": "This token is already revoked."})
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_event_record(
            action=WorkflowEvent.SERVICE_ACCOUNT_TOKEN_REVOKED,
            actor=actor,
            target=account,
            **_where(account),
            data={"prefix": token.prefix, "reason": reason.strip()},
        )
    return token


def service_account_disable(*, actor, account: ServiceAccount, reason: str, note: str = "") -> ServiceAccount:
    """Disable an account by hand or in an incident; it authenticates no more until reactivated."""
    if reason not in (DisabledReason.MANUAL, DisabledReason.INCIDENT):
        raise ValidationError({"reason": "Choose manual or incident."})
    with audited_transaction():
        account = _locked(account)
        require(actor, "service_account.manage", account, fresh=True)
        if not account.is_active:
            raise ValidationError({"is_active": "This service account is already disabled."})
        _disable(account, reason=reason, actor=actor, now=timezone.now(), data={"note": note.strip()})
    return account


def _disable(account: ServiceAccount, *, reason: str, actor, now: datetime, data: dict | None = None) -> None:
    """Disable a locked, active account and record it (inside the caller's audited transaction)."""
    account.is_active, account.disabled_reason, account.disabled_at = False, reason, now
    account.save(update_fields=["is_active", "disabled_reason", "disabled_at"])
    audit_event_record(
        action=WorkflowEvent.SERVICE_ACCOUNT_DISABLED,
        actor=actor,
        target=account,
        **_where(account),
        data={"reason": reason, **(data or {})},
    )
    account_id = account.pk
    transaction.on_commit(lambda: _notify_owners("disabled", account_id))


def service_account_reactivate(*, actor, account: ServiceAccount, note: str = "") -> ServiceAccount:
    """Reactivate a disabled account: a workspace owner's decision only (the refusal is recorded).

    An account whose rotation is overdue gets a new token first, else the next sweep would
    disable it again; the dormancy clock restarts.
    """
    _require_recording_denial(actor, "service_account.reactivate", account)
    with audited_transaction():
        account = _locked(account)
        require(actor, "service_account.reactivate", account, fresh=True)
        if account.is_active:
            raise ValidationError({"is_active": "This service account is active."})
        now = timezone.now()
        if account.rotation_due_at <= now:
            raise ValidationError(
                {"rotation_due_at": "Its rotation is overdue: issue a new token first, then reactivate it."}
            )
        before = account.disabled_reason
        account.is_active, account.disabled_reason, account.disabled_at = True, "", None
        account.active_since = now
        account.save(update_fields=["is_active", "disabled_reason", "disabled_at", "active_since"])
        audit_event_record(
            action=WorkflowEvent.SERVICE_ACCOUNT_REACTIVATED,
            actor=actor,
            target=account,
            **_where(account),
            data={"was_disabled_for": before, "note": note.strip()},
        )
    return account


# --- Authentication and use ----------------------------------------------------------------------


def service_account_authenticate(
    *, token: str, now: datetime | None = None, record_failure: bool = True
) -> ServiceAccountPrincipal:
    """Return the principal of a valid token, or record the failure and raise (unrecorded with
    ``record_failure`` false: an attempt during its prefix's lockout, which is recorded once).

    Refused: a malformed token, an unknown prefix, a wrong secret, an expired, revoked or
    superseded (past its grace window) token, a disabled account. The failure event names the
    prefix only, never the secret. Success records ``service_account.authenticated``.
    """
    now = now or timezone.now()
    parsed = SERVICE_ACCOUNT_TOKENS.parse(token)
    if parsed.refusal:
        _refuse(prefix=parsed.prefix, reason="malformed", row=None, record=record_failure)
    prefix = parsed.prefix
    row = (
        ServiceAccountToken.objects.select_related("service_account__workspace").filter(prefix=prefix).first()
    )
    # The digest is compared even for an unknown prefix, so both cost the same time.
    if not digest_matches(row.digest if row is not None else None, parsed.secret):
        _refuse(
            prefix=prefix,
            reason="unknown prefix" if row is None else "wrong secret",
            row=row,
            record=record_failure,
        )
    refusal = row.refusal(now) or (None if row.service_account.is_active else "account disabled")
    if refusal is not None:
        _refuse(prefix=prefix, reason=refusal, row=row, record=record_failure)
    account = row.service_account
    principal = ServiceAccountPrincipal.of(account, token_prefix=prefix)
    with audited_transaction():
        ServiceAccount.objects.filter(pk=account.pk).update(last_used_at=now)
        audit_event_record(
            action=WorkflowEvent.SERVICE_ACCOUNT_AUTHENTICATED,
            actor=principal,
            target=account,
            **_where(account),
            data={"prefix": prefix},
        )
    return principal


# Failed service-account token attempts, per token prefix and per client address.
SERVICE_ACCOUNT_THROTTLE = FailureThrottle("service_account")


def service_account_lockout_record(*, lockout: Lockout, prefix: str, address: str | None) -> None:
    """Record that a throttle lockout began (``service_account.locked_out``, once per lockout)."""
    row = (
        ServiceAccountToken.objects.select_related("service_account__workspace").filter(prefix=prefix).first()
        if prefix
        else None
    )
    account = row.service_account if row is not None else None
    with transaction.atomic():
        audit_event_record(
            action=WorkflowEvent.SERVICE_ACCOUNT_LOCKED_OUT,
            actor=None,
            target=account,
            outcome=Outcome.DENIED,
            data=lockout.as_record(prefix=prefix, address=address),
            **(_where(account) if account is not None else {}),
        )


def _refuse(*, prefix: str, reason: str, row: ServiceAccountToken | None, record: bool = True) -> NoReturn:
    account = row.service_account if row is not None else None
    where = _where(account) if account is not None else {}
    if record:
        with transaction.atomic():
            audit_event_record(
                action=WorkflowEvent.SERVICE_ACCOUNT_AUTHENTICATION_FAILED,
                actor=None,
                target=account,
                outcome=Outcome.DENIED,
                data={"prefix": prefix, "reason": reason},
                **where,
            )
    raise ServiceAccountAuthenticationError(reason)


def service_account_use_record(
    *, principal: ServiceAccountPrincipal, method: str, path: str, status: int
) -> None:
    """Record one API request made by a service account, with the status it got."""
    account = ServiceAccount.objects.select_related("workspace").get(pk=principal.pk)
    with transaction.atomic():
        audit_event_record(
            action=WorkflowEvent.SERVICE_ACCOUNT_USED,
            actor=principal,
            target=account,
            **_where(account),
            outcome=Outcome.SUCCESS if status < 400 else Outcome.DENIED,
            data={"method": method, "path": path[:500], "status": status, "prefix": principal.token_prefix},
        )


# --- The daily sweep -----------------------------------------------------------------------------


def service_accounts_sweep(*, now: datetime | None = None) -> SweepResult:
    """Disable overdue and dormant accounts and warn about rotations due soon; idempotent.

    Overdue: the rotation due date has passed. Dormant: unused (or, never used, not reactivated
    or created) for ``SERVICE_ACCOUNT_DORMANT_DAYS``. Due soon: within
    ``SERVICE_ACCOUNT_ROTATION_WARNING_DAYS``, warned once per rotation cycle. Expired tokens need
    no sweep: authentication refuses them.
    """
    now = now or timezone.now()
    result = SweepResult()
    active = ServiceAccount.objects.filter(is_active=True)
    for account_id in overdue_accounts(active, now).values_list("pk", flat=True):
        if _sweep_disable(account_id, DisabledReason.ROTATION_OVERDUE, now):
            result.disabled_overdue.append(account_id)
    for account_id in dormant_accounts(active, now).values_list("pk", flat=True):
        if _sweep_disable(account_id, DisabledReason.DORMANT, now):
            result.disabled_dormant.append(account_id)
    for account_id in rotation_due_soon(active, now).values_list("pk", flat=True):
        if _sweep_warn(account_id, now):
            result.warned.append(account_id)
    return result


def _sweep_disable(account_id: int, reason: str, now: datetime) -> bool:
    with audited_transaction():
        account = (
            ServiceAccount.objects.select_for_update(of=("self",))
            .select_related("workspace")
            .get(pk=account_id)
        )
        if not account.is_active:
            return False  # disabled meanwhile (another sweep, or by hand)
        data = {"rotation_due_at": account.rotation_due_at, "last_used_at": account.last_used_at}
        _disable(account, reason=reason, actor=None, now=now, data=data)
    return True


def _sweep_warn(account_id: int, now: datetime) -> bool:
    with audited_transaction():
        account = (
            ServiceAccount.objects.select_for_update(of=("self",))
            .select_related("workspace")
            .get(pk=account_id)
        )
        if not account.is_active or account.rotation_warned_for == account.rotation_due_at:
            return False
        account.rotation_warned_for = account.rotation_due_at
        account.save(update_fields=["rotation_warned_for"])
        days_left = max(0, (account.rotation_due_at - now).days)
        audit_event_record(
            action=WorkflowEvent.SERVICE_ACCOUNT_ROTATION_WARNING,
            actor=None,
            target=account,
            **_where(account),
            data={"rotation_due_at": account.rotation_due_at, "days_left": days_left},
        )
        transaction.on_commit(lambda: _notify_owners("rotation_warning", account_id))
    return True


def _notify_owners(kind: str, account_id: int) -> None:
    # Tasks sit above services (they call them); a service only starts one once it has committed.
    from workflows.service_accounts.tasks import notify_service_account

    notify_service_account.delay(kind, account_id)
