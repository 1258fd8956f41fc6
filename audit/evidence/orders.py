"""Evidence orders: an auditor orders a package in the control panel, a worker builds it, the
auditor downloads it. Every change of an order is one of the services below, each writing its
ledger event in the same transaction (progress excepted: it is bookkeeping, not a change of record).

The build is idempotent: a redelivered job (its worker was killed) starts again from scratch,
the previous attempt's partial file removed, and the package covers the same events, because
the period is cut at the moment of the order (events recorded later, the order's own included,
are not part of it).
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import EvidenceEvent
from audit.models import EvidenceFramework, EvidenceOrder, EvidenceOrderState, Outcome
from audit.sealing import ledger_seal_all
from audit.services import audit_event_record, audited_transaction
from governance.access.decision import AccessDenied, decide
from governance.core.locks import LockClass, advisory_lock

if TYPE_CHECKING:
    from audit.evidence.builder import BuildResult

logger = logging.getLogger(__name__)

ACTION = "evidence.order"
ORGANIZATION_ACTION = "evidence.order_organization"  # a package of the organisation's own events


def evidence_order_decision(actor, *, workspace, organization=None):
    """Whether ``actor`` may order a package of ``workspace`` (None: of ``organization``'s own events)."""
    if workspace is None:
        return decide(actor, ORGANIZATION_ACTION, organization, fresh=True)
    return decide(actor, ACTION, workspace, fresh=True)


def utc_today() -> date:
    return timezone.now().astimezone(UTC).date()


def evidence_order_period_errors(*, period_start: date | None, period_end: date | None) -> dict[str, str]:
    """Field errors of a period (whole UTC days, the end included); empty when it is acceptable."""
    errors: dict[str, str] = {}
    today = utc_today()
    if period_start is not None and period_start > today:
        errors["period_start"] = f"The period starts in the future; today is {today} (UTC)."
    if period_end is not None and period_end > today:
        errors["period_end"] = (
            f"The period cannot end after today ({today}, UTC): evidence covers what has already happened."
        )
    elif period_start is not None and period_end is not None and period_end < period_start:
        errors["period_end"] = (
            f"The period is inverted: it ends on {period_end}, before it starts on {period_start}."
        )
    return errors


def evidence_order_create(
    *,
    actor,
    workspace,
    period_start: date,
    period_end: date,
    framework: str = "",
    organization=None,
) -> EvidenceOrder:
    """Order a package of ``workspace`` for the period; the build starts once this commits.

    With ``workspace`` None, the package is of ``organization``'s own events (the actor's
    organisation; ``evidence.order_organization``). Raises ``ValidationError`` (field errors)
    for a bad period or framework and ``AccessDenied`` when the actor may not order it (the
    caller records the denial).
    """
    errors = evidence_order_period_errors(period_start=period_start, period_end=period_end)
    if workspace is None and organization is None:
        errors["workspace"] = "Choose the workspace the package is for."
    if framework and framework not in EvidenceFramework.values:
        errors["framework"] = f"{framework!r} is not one of the frameworks offered."
    if errors:
        raise ValidationError(errors)
    with audited_transaction():
        decision = evidence_order_decision(actor, workspace=workspace, organization=organization)
        if not decision.allowed:
            raise AccessDenied(decision)
        order = EvidenceOrder.objects.create(
            requester=actor,
            organization_id=workspace.organization_id if workspace is not None else organization.pk,
            workspace=workspace,
            period_start=period_start,
            period_end=period_end,
            framework=framework,
        )
        audit_event_record(
            action=EvidenceEvent.EVIDENCE_ORDERED,
            actor=actor,
            target=order,
            organization_id=order.organization_id,
            workspace_id=order.workspace_id,
            data={
                "order": order.pk,
                "scope": "workspace" if workspace is not None else "organization",
                "from": period_start,
                "to": period_end,
                "framework": framework,
            },
        )
        transaction.on_commit(lambda: _enqueue(order.pk))
    return order


def _enqueue(order_id: int) -> None:
    from audit.evidence import tasks  # at call time: the task module imports this one

    tasks.evidence_order_build.delay(order_id)


def evidence_order_start(*, order_id: int) -> EvidenceOrder | None:
    """Begin an attempt (the first, or one after a lost worker); None when there is nothing to do."""
    with audited_transaction():
        order = EvidenceOrder.objects.select_for_update().get(pk=order_id)
        if order.state not in (EvidenceOrderState.QUEUED, EvidenceOrderState.BUILDING):
            return None  # finished already: a redelivered or duplicated message
        if order.attempts >= settings.EVIDENCE_BUILD_MAX_ATTEMPTS:
            _fail(
                order,
                f"The build was attempted {order.attempts} times without finishing (a worker was "
                "lost each time); order the package again, or ask an operator to check the workers.",
            )
            return None
        order.attempts += 1
        order.state = EvidenceOrderState.BUILDING
        order.phase, order.progress_done, order.progress_total, order.error = "starting", 0, 0, ""
        order.started_at = timezone.now()
        order.save(
            update_fields=[
                "attempts",
                "state",
                "phase",
                "progress_done",
                "progress_total",
                "error",
                "started_at",
            ]
        )
        audit_event_record(
            action=EvidenceEvent.EVIDENCE_ORDER_STARTED,
            actor=None,
            target=order,
            organization_id=order.organization_id,
            workspace_id=order.workspace_id,
            data={"order": order.pk, "attempt": order.attempts},
        )
    return order


def evidence_order_progress(*, order_id: int, phase: str, done: int, total: int) -> None:
    """Record how far the build is, in a short transaction of its own (no ledger event)."""
    with transaction.atomic():
        EvidenceOrder.objects.filter(pk=order_id, state=EvidenceOrderState.BUILDING).update(
            phase=phase[:40], progress_done=done, progress_total=total
        )


def evidence_order_complete(*, order_id: int, result: BuildResult) -> EvidenceOrder:
    """Mark the order ready with its file's size and SHA-256."""
    size, sha256 = _file_digest(result.path)
    with audited_transaction():
        order = EvidenceOrder.objects.select_for_update().get(pk=order_id)
        now = timezone.now()
        order.state = EvidenceOrderState.READY
        order.phase, order.progress_done = "", max(order.progress_total, 1)
        order.progress_total = order.progress_done
        order.file_size, order.file_sha256, order.manifest_sha256 = size, sha256, result.manifest_sha256
        order.finished_at = now
        order.expires_at = now + timedelta(days=settings.EVIDENCE_RETENTION_DAYS)
        order.save(
            update_fields=[
                "state",
                "phase",
                "progress_done",
                "progress_total",
                "file_size",
                "file_sha256",
                "manifest_sha256",
                "finished_at",
                "expires_at",
            ]
        )
        audit_event_record(
            action=EvidenceEvent.EVIDENCE_ORDER_READY,
            actor=None,
            target=order,
            organization_id=order.organization_id,
            workspace_id=order.workspace_id,
            data={
                "order": order.pk,
                "attempt": order.attempts,
                "events": result.events,
                "tree_head": result.head_number,
                "manifest_sha256": result.manifest_sha256,
                "file_sha256": sha256,
                "file_size": size,
            },
        )
    return order


def evidence_order_fail(*, order_id: int, message: str) -> EvidenceOrder:
    """Mark the order failed with a message for the auditor; its files are removed."""
    with audited_transaction():
        order = EvidenceOrder.objects.select_for_update().get(pk=order_id)
        if order.state in (EvidenceOrderState.QUEUED, EvidenceOrderState.BUILDING):
            _fail(order, message)
    return order


def _fail(order: EvidenceOrder, message: str) -> None:
    order.state = EvidenceOrderState.FAILED
    order.error = message
    order.phase = ""
    order.finished_at = timezone.now()
    order.save(update_fields=["state", "error", "phase", "finished_at"])
    audit_event_record(
        action=EvidenceEvent.EVIDENCE_ORDER_FAILED,
        actor=None,
        target=order,
        outcome=Outcome.FAILED,
        organization_id=order.organization_id,
        workspace_id=order.workspace_id,
        data={"order": order.pk, "attempts": order.attempts, "error": message},
    )
    transaction.on_commit(lambda: _remove_files(order, final=True))


def evidence_orders_expire() -> int:
    """Expire ready orders past their retention and delete their files; returns how many."""
    expired = 0
    due = EvidenceOrder.objects.filter(state=EvidenceOrderState.READY, expires_at__lte=timezone.now())
    for order_id in due.values_list("pk", flat=True):
        with audited_transaction():
            order = EvidenceOrder.objects.select_for_update().get(pk=order_id)
            if order.state != EvidenceOrderState.READY:
                continue
            order.state = EvidenceOrderState.EXPIRED
            order.save(update_fields=["state"])
            audit_event_record(
                action=EvidenceEvent.EVIDENCE_ORDER_EXPIRED,
                actor=None,
                target=order,
                organization_id=order.organization_id,
                workspace_id=order.workspace_id,
                data={"order": order.pk, "file_sha256": order.file_sha256},
            )
            transaction.on_commit(lambda order=order: _remove_files(order, final=True))
        expired += 1
    return expired


def evidence_order_build(*, order_id: int) -> str:
    """Build the package of an order from scratch; the one service the Celery job calls.

    Returns the order's state afterwards ("busy" when another worker builds it right now).
    A build refused by the builder fails the order with the builder's message; other errors
    propagate, and the job retries them (bounded by ``EVIDENCE_BUILD_MAX_ATTEMPTS``).
    """
    with advisory_lock(LockClass.EVIDENCE_BUILD, order_id) as taken:
        if not taken:
            return "busy"  # a duplicate delivery while the first is still building: let it finish
        order = evidence_order_start(order_id=order_id)
        if order is None:
            return EvidenceOrder.objects.values_list("state", flat=True).get(pk=order_id)
        decision = evidence_order_decision(
            order.requester, workspace=order.workspace, organization=order.organization
        )
        if not decision.allowed:
            scope = (
                f"workspace {order.workspace.slug!r}"
                if order.workspace_id
                else "the organisation's own events"
            )
            evidence_order_fail(
                order_id=order_id,
                message=(
                    f"{order.requester.email} may no longer order evidence for {scope}: "
                    f"{'; '.join(decision.reasons)}."
                ),
            )
            return EvidenceOrderState.FAILED
        _remove_files(order, final=True)  # a lost attempt's partial file: start from scratch
        # The events of the period, up to the order, must be sealed under a signed tree head.
        ledger_seal_all()
        start = datetime.combine(order.period_start, time.min, tzinfo=UTC)
        end = min(
            datetime.combine(order.period_end + timedelta(days=1), time.min, tzinfo=UTC), order.created_at
        )
        # The builder (and the PDF library behind its summary) load in the worker that builds,
        # not in every process that only orders or lists packages.
        from audit.evidence.builder import EvidenceError, evidence_package_build

        try:
            result = evidence_package_build(
                actor=order.requester,
                workspace=order.workspace,
                organization=order.organization,
                start=start,
                end=end,
                out=evidence_path(order),
                framework=order.get_framework_display() if order.framework else "",
                progress=_reporter(order_id),
            )
        except EvidenceError as error:
            evidence_order_fail(order_id=order_id, message=str(error))
            return EvidenceOrderState.FAILED
        os.chmod(result.path, 0o600)
        return evidence_order_complete(order_id=order_id, result=result).state


def _reporter(order_id: int):
    def report(phase: str, done: int, total: int) -> None:
        evidence_order_progress(order_id=order_id, phase=phase, done=done, total=total)

    return report


def evidence_directory() -> Path:
    """``settings.EVIDENCE_DIR``, created readable by the portal's user only."""
    directory = Path(settings.EVIDENCE_DIR)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)  # also when it existed before: partial files are not yet 0600
    return directory


def evidence_path(order: EvidenceOrder) -> Path:
    """Where the order's package is (or will be): named by the order's random uid, not its number."""
    return evidence_directory() / f"evidence-{order.uid.hex}.zip"


def evidence_download_name(order: EvidenceOrder) -> str:
    """The file name offered to the auditor's browser."""
    scope = order.workspace.slug if order.workspace_id else f"{order.organization.slug}-organisation"
    return f"evidence-{scope}-{order.period_start}-{order.period_end}.zip"


def _remove_files(order: EvidenceOrder, *, final: bool) -> None:
    path = evidence_path(order)
    for partial in path.parent.glob(f".{path.name}.partial-*"):
        partial.unlink(missing_ok=True)
    if final:
        path.unlink(missing_ok=True)


def _file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
