"""Download links of evidence packages: signed, bound to one order and one person, short-lived.

A link is ``/evidence/<token>/download`` where the token is ``"<order id>.<user id>"`` signed
with the portal's secret key (salted for this use only) and a timestamp. It works only for the
person it was issued to, signed in, while they may still order evidence for the workspace, and
for ``settings.EVIDENCE_LINK_TTL_SECONDS``. Each download and each refusal is a ledger event.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

from audit.events import EvidenceEvent
from audit.evidence.orders import evidence_order_decision, evidence_path
from audit.models import EvidenceOrder, EvidenceOrderState, Outcome
from audit.services import audit_event_record, audited_transaction

SALT = "audit.evidence.download-link"


@dataclass
class LinkRefusedError(Exception):
    """The link cannot be honoured: an HTTP status, a reason code for the ledger, a sentence for the person."""

    status: int
    reason: str
    message: str
    order: EvidenceOrder | None = None


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def evidence_link_issue(*, order: EvidenceOrder, user) -> str:
    """The download URL of ``order`` for ``user`` (who must be its requester)."""
    if order.requester_id != user.pk:
        raise ValueError("A download link is issued only to the person who ordered the package.")
    token = _signer().sign(f"{order.pk}.{user.pk}")
    return reverse("evidence-download", args=[token])


def evidence_link_check(*, token: str, user) -> EvidenceOrder:
    """The order a link gives ``user``; ``LinkRefusedError`` says why not."""
    try:
        value = _signer().unsign(token, max_age=settings.EVIDENCE_LINK_TTL_SECONDS)
    except signing.SignatureExpired:
        raise LinkRefusedError(
            410,
            "expired",
            "This download link has expired. Open the order in the control panel for a new one.",
        ) from None
    except signing.BadSignature:
        raise LinkRefusedError(
            403, "invalid_signature", "This download link is not valid (it was altered or cut short)."
        ) from None
    order_id, _, user_id = value.partition(".")
    order = (
        EvidenceOrder.objects.select_related("workspace", "organization", "requester")
        .filter(pk=int(order_id))
        .first()
    )
    if order is None:
        raise LinkRefusedError(404, "no_such_order", "The order of this link no longer exists.")
    if int(user_id) != user.pk or order.requester_id != user.pk:
        raise LinkRefusedError(
            403,
            "other_user",
            "This download link was issued to someone else; ask for the package to be ordered for you.",
            order,
        )
    decision = evidence_order_decision(user, workspace=order.workspace, organization=order.organization)
    if not decision.allowed:
        raise LinkRefusedError(403, "not_assigned", decision.message, order)
    if order.state == EvidenceOrderState.EXPIRED:
        raise LinkRefusedError(
            410, "package_expired", "This package has expired and was deleted; order it again.", order
        )
    if order.state != EvidenceOrderState.READY:
        raise LinkRefusedError(
            404, "not_ready", f"This package is not ready (it is {order.get_state_display().lower()}).", order
        )
    if not evidence_path(order).is_file():
        raise LinkRefusedError(410, "file_missing", "The package file is gone; order it again.", order)
    return order


def evidence_download_record(*, actor, order: EvidenceOrder) -> None:
    """Record that ``actor`` downloaded the package of ``order``."""
    with audited_transaction():
        audit_event_record(
            action=EvidenceEvent.EVIDENCE_DOWNLOADED,
            actor=actor,
            target=order,
            organization_id=order.organization_id,
            workspace_id=order.workspace_id,
            data={
                "order": order.pk,
                "file_sha256": order.file_sha256,
                "manifest_sha256": order.manifest_sha256,
            },
        )


def evidence_download_deny(*, actor, refused: LinkRefusedError) -> None:
    """Record a refused download with its reason (the token itself is never recorded)."""
    order = refused.order
    with audited_transaction():
        audit_event_record(
            action=EvidenceEvent.EVIDENCE_DOWNLOAD_DENIED,
            actor=actor,
            target=order,
            outcome=Outcome.DENIED,
            organization_id=order.organization_id if order else getattr(actor, "organization_id", None),
            workspace_id=order.workspace_id if order else None,
            data={"order": order.pk if order else None, "reason": refused.reason, "status": refused.status},
        )
