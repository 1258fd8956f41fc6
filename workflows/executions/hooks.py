"""Signed webhooks: a workflow whose approved version says ``{"type": "webhook", "path": ...}``
is triggered by ``POST /hooks/<workspace id><path>`` with a body signed by its secret.

Signature: ``X-Portal-Timestamp: <unix seconds>`` and ``X-Portal-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``<timestamp>.<body>`` under the workflow's webhook secret (as Stripe and GitHub
sign theirs). A timestamp further than ``WEBHOOK_TOLERANCE_SECONDS`` from now is refused, and a
signature is accepted once: it is the run's idempotency key, so a replay inside the window is
refused too and never starts a second run. Secrets live in the secrets store; a new one leaves
the previous one valid for ``WEBHOOK_SECRET_GRACE_HOURS``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_event_record, audited_transaction
from governance.access.decision import require
from governance.core.redaction import secret_register
from governance.core.text import checked_reason
from workflows.changes.models import Workflow, WorkflowStatus
from workflows.credentials.services import secret_fingerprint
from workflows.events import WorkflowEvent
from workflows.executions.models import WebhookSecret, WebhookSecretStatus

STORE = "secrets"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")
SECRET_PREFIX = "whsec_"  # noqa: S105 - the mark of a value, not a value


def webhook_secret_issue(*, actor, workflow: Workflow) -> str:
    """A new signing secret for ``workflow`` (owners: ``credential.manage``), returned once; the
    active one becomes *previous* and keeps working for the grace period."""
    value = SECRET_PREFIX + secrets.token_urlsafe(32)
    secret_register(value)  # never in this process's logs or records
    now = timezone.now()
    # The ledger's transaction is the inner one: it commits first, so a secret never exists without
    # its event (should the store's commit fail, the event names a secret nobody received).
    with transaction.atomic(using=STORE), audited_transaction():
        workflow = (
            Workflow.objects.select_for_update(of=("self",)).select_related("workspace").get(pk=workflow.pk)
        )
        require(actor, "credential.manage", workflow, fresh=True)
        grace = now + timedelta(hours=settings.WEBHOOK_SECRET_GRACE_HOURS)
        rows = WebhookSecret.objects.using(STORE).select_for_update().filter(workflow_id=workflow.pk)
        last = rows.order_by("-number").values_list("number", flat=True).first() or 0
        rows.filter(status=WebhookSecretStatus.ACTIVE).update(
            status=WebhookSecretStatus.PREVIOUS, valid_until=grace
        )
        secret = WebhookSecret.objects.using(STORE).create(
            workspace_id=workflow.workspace_id,
            workflow_id=workflow.pk,
            number=last + 1,
            value=value,
            fingerprint=secret_fingerprint(workflow.workspace_id, value),
            created_by_id=actor.pk,
        )
        audit_event_record(
            action=WorkflowEvent.WEBHOOK_SECRET_ISSUED,
            actor=actor,
            target=workflow,
            organization_id=workflow.workspace.organization_id,
            workspace_id=workflow.workspace_id,
            data={
                "version": secret.number,
                "fingerprint": secret.fingerprint,
                "previous_valid_until": grace if last else None,
            },
        )
    return value


def webhook_secrets_revoke(*, actor, workflow: Workflow, reason: str) -> int:
    """The incident switch for a leaked secret: every secret of the workflow stops working now —
    the active one and those in their grace — and their values are erased. The webhook refuses
    every request until an owner issues a new secret. Returns how many were revoked."""
    reason = checked_reason(reason)
    with transaction.atomic(using=STORE), audited_transaction():
        workflow = (
            Workflow.objects.select_for_update(of=("self",)).select_related("workspace").get(pk=workflow.pk)
        )
        require(actor, "credential.manage", workflow, fresh=True)
        rows = (
            WebhookSecret.objects.using(STORE)
            .select_for_update()
            .filter(workflow_id=workflow.pk)
            .exclude(status=WebhookSecretStatus.REVOKED)
        )
        numbers = sorted(rows.values_list("number", flat=True))
        rows.update(status=WebhookSecretStatus.REVOKED, value=None, valid_until=timezone.now())
        audit_event_record(
            action=WorkflowEvent.WEBHOOK_SECRETS_REVOKED,
            actor=actor,
            target=workflow,
            organization_id=workflow.workspace.organization_id,
            workspace_id=workflow.workspace_id,
            data={"versions": numbers, "reason": reason},
        )
    return len(numbers)


def webhook_secrets_valid(workflow_id: int) -> list[str]:
    """The secret values a signature may be made with now: the active one and those in grace."""
    now = timezone.now()
    rows = WebhookSecret.objects.using(STORE).filter(workflow_id=workflow_id).exclude(value=None)
    return [
        row.value
        for row in rows
        if row.status == WebhookSecretStatus.ACTIVE
        or (row.status == WebhookSecretStatus.PREVIOUS and row.valid_until and row.valid_until > now)
    ]


def webhook_secrets_listed(workflow_id: int) -> list[WebhookSecret]:
    """A workflow's secrets, newest first, for display (fingerprints only; values deferred)."""
    return list(
        WebhookSecret.objects.using(STORE).filter(workflow_id=workflow_id).defer("value").order_by("-number")
    )


def signature_of(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: what a caller sends in ``X-Portal-Signature``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def workflows_for_hook(*, workspace_id: int, path: str) -> list[Workflow]:
    """The active workflows of the workspace whose approved version listens on ``path``."""
    return list(
        Workflow.objects.filter(
            workspace_id=workspace_id,
            status__in=(WorkflowStatus.ACTIVE, WorkflowStatus.QUARANTINED),
            active_version__definition__trigger__type="webhook",
            active_version__definition__trigger__path=path,
        ).select_related("workspace")
    )


class HookRefused(ValidationError):  # noqa: N818 - a refusal with its HTTP status, not a bug
    """A webhook request refused before anything ran, with the status to answer."""

    def __init__(self, status: int, message: str, reason: str):
        super().__init__(message)
        self.status, self.reason = status, reason


def webhook_verify(*, workflows: list[Workflow], timestamp: str, signature: str, body: bytes) -> Workflow:
    """The workflow whose secret signed ``body`` at ``timestamp``, or ``HookRefused``."""
    if not _TIMESTAMP.fullmatch(timestamp or ""):
        raise HookRefused(401, "X-Portal-Timestamp must be the Unix time in seconds.", "timestamp")
    if abs(timezone.now().timestamp() - int(timestamp)) > settings.WEBHOOK_TOLERANCE_SECONDS:
        raise HookRefused(
            401,
            f"The timestamp is more than {settings.WEBHOOK_TOLERANCE_SECONDS} s from now: sign the request again.",
            "stale",
        )
    if not _SIGNATURE.fullmatch(signature or ""):
        raise HookRefused(
            401, "X-Portal-Signature must be sha256=<64 hex digits: HMAC of timestamp.body>.", "signature"
        )
    given = signature.encode("ascii")
    for workflow in workflows:
        for secret in webhook_secrets_valid(workflow.pk):
            if hmac.compare_digest(signature_of(secret, timestamp, body).encode("ascii"), given):
                return workflow
    raise HookRefused(401, "The signature does not match.", "signature")


def webhook_refusal_record(*, workflow: Workflow, reason: str, address: str | None) -> None:
    """A refused request for a known workflow, in its own transaction (nothing else happened):
    at most one event per workflow, reason and address a minute, so that a flood of forgeries
    cannot flood the ledger (the log line of each request stays)."""
    from django.core.cache import cache

    minute = int(timezone.now().timestamp() // 60)
    said = hashlib.sha256(f"{reason}\n{address}".encode()).hexdigest()[:16]
    if not cache.add(f"hooks:refused:{workflow.pk}:{said}:{minute}", 1, timeout=120):
        return
    with audited_transaction():
        audit_event_record(
            action=WorkflowEvent.WEBHOOK_REFUSED,
            actor=None,
            target=workflow,
            organization_id=workflow.workspace.organization_id,
            workspace_id=workflow.workspace_id,
            outcome="denied",
            data={"reason": reason, "address": address or ""},
        )
