"""SCIM tokens: creation (the plaintext returned once), revocation, and authentication with its
ledger events. The failure event names the token's public prefix only, never the token."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NoReturn

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.events import AccountEvent
from accounts.models import ScimToken
from accounts.scim.principal import SCIM_TOKENS, ScimPrincipal
from audit.models import Outcome
from audit.services import audit_event_record, audited_transaction
from governance.access.decision import require
from governance.core.throttle import FailureThrottle, Lockout
from governance.core.tokens import TokenRefusedError, digest_matches
from governance.tenancy.models import Organization

# Failed SCIM token attempts, per token prefix and per client address (docs/identity.md).
SCIM_THROTTLE = FailureThrottle("scim")

MAX_LIFETIME_DAYS = 730
DEFAULT_LIFETIME_DAYS = 365


class ScimAuthenticationError(TokenRefusedError):
    """A SCIM token was refused; ``reason`` is for the ledger, never for the caller."""

    refused_message = "The SCIM token was refused."


@dataclass(frozen=True)
class IssuedScimToken:
    """A freshly created token: the stored row and the plaintext, shown once and dropped."""

    token: ScimToken
    plaintext: str = field(repr=False)


def scim_token_create(
    *, actor, organization: Organization, name: str, days: int = DEFAULT_LIFETIME_DAYS
) -> IssuedScimToken:
    """Create a SCIM token for ``organization`` (``organization.manage``); return its plaintext once."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the identity provider that will use this token."})
    if not isinstance(days, int) or not 1 <= days <= MAX_LIFETIME_DAYS:
        raise ValidationError({"days": f"Choose a lifetime of 1 to {MAX_LIFETIME_DAYS} days."})
    with audited_transaction():
        require(actor, "organization.manage", organization, fresh=True)
        now = timezone.now()
        minted = SCIM_TOKENS.mint(prefix_taken=_prefix_taken)
        token = ScimToken(
            organization=organization,
            name=name[:120],
            prefix=minted.prefix,
            digest=minted.digest,
            created_by=actor,
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        token.save()
        audit_event_record(
            action=AccountEvent.SCIM_TOKEN_CREATED,
            actor=actor,
            target=token,
            organization_id=organization.pk,
            data={"prefix": token.prefix, "name": token.name, "expires_at": token.expires_at},
        )
    return IssuedScimToken(token=token, plaintext=minted.plaintext)


def scim_token_revoke(*, actor, token: ScimToken, reason: str = "") -> ScimToken:
    """Revoke a token at once: it is refused from the next request on."""
    with audited_transaction():
        token = ScimToken.objects.select_for_update().select_related("organization").get(pk=token.pk)
        require(actor, "organization.manage", token.organization, fresh=True)
        if token.revoked_at is not None:
            raise ValidationError({"revoked_at": "This token is already revoked."})
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_event_record(
            action=AccountEvent.SCIM_TOKEN_REVOKED,
            actor=actor,
            target=token,
            organization_id=token.organization_id,
            data={"prefix": token.prefix, "reason": (reason or "").strip()[:500]},
        )
    return token


def scim_token_authenticate(
    *, token: str, now: datetime | None = None, record_failure: bool = True
) -> ScimPrincipal:
    """Return the principal of a valid token, or record the refusal and raise (unrecorded with
    ``record_failure`` false: an attempt during its prefix's lockout, which is recorded once).

    Refused: a missing or malformed token, an unknown prefix, a wrong secret, an expired or
    revoked token. The digest is compared in constant time, and also for an unknown prefix, so
    both cost the same. A success moves ``last_used_at`` on (at most once a minute).
    """
    now = now or timezone.now()
    parsed = SCIM_TOKENS.parse(token)
    if parsed.refusal:
        _refuse(prefix=parsed.prefix, reason=parsed.refusal, record=record_failure)
    prefix = parsed.prefix
    row = ScimToken.objects.filter(prefix=prefix).first()
    if not digest_matches(row.digest if row is not None else None, parsed.secret):
        _refuse(
            prefix=prefix,
            reason="unknown prefix" if row is None else "wrong secret",
            row=row,
            record=record_failure,
        )
    refusal = row.refusal(now)
    if refusal is not None:
        _refuse(prefix=prefix, reason=refusal, row=row, record=record_failure)
    if row.last_used_at is None or now - row.last_used_at >= timedelta(seconds=60):
        ScimToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return ScimPrincipal(pk=row.pk, name=row.name, organization_id=row.organization_id, token_prefix=prefix)


def scim_auth_failure_record(*, prefix: str, reason: str, row: ScimToken | None = None) -> None:
    """Record a refused SCIM call: ``scim.auth_failed`` with the token's prefix and the reason only."""
    with transaction.atomic():
        audit_event_record(
            action=AccountEvent.SCIM_AUTH_FAILED,
            actor=None,
            target=row,
            outcome=Outcome.FAILED,
            organization_id=row.organization_id if row is not None else None,
            data={"prefix": prefix, "reason": reason},
        )


def scim_lockout_record(*, lockout: Lockout, prefix: str, address: str | None) -> None:
    """Record that a SCIM throttle lockout began (``scim.locked_out``, once per lockout): the
    dimension locked, the prefix and address, the failures counted and until when."""
    row = ScimToken.objects.filter(prefix=prefix).first() if prefix else None
    with transaction.atomic():
        audit_event_record(
            action=AccountEvent.SCIM_LOCKED_OUT,
            actor=None,
            target=row,
            outcome=Outcome.DENIED,
            organization_id=row.organization_id if row is not None else None,
            data=lockout.as_record(prefix=prefix, address=address),
        )


def _prefix_taken(prefix: str) -> bool:
    return ScimToken.objects.filter(prefix=prefix).exists()


def _refuse(*, prefix: str, reason: str, row: ScimToken | None = None, record: bool = True) -> NoReturn:
    if record:
        scim_auth_failure_record(prefix=prefix, reason=reason, row=row)
    raise ScimAuthenticationError(reason)
