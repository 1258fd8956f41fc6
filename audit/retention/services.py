"""Changing retention: a workspace's frameworks in scope, and legal holds placed and released.

Each change is one service, in one transaction with its ledger event. Who may call them is the
caller's question (the control panel asks the decision point: ``retention.manage`` in the
workspace, ``retention.manage_organization`` for a hold over the whole organisation)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from audit.events import RetentionEvent
from audit.models import AuditEvent, LegalHold, RetentionFramework, RetentionPolicy
from audit.retention.policy import policy_retention
from audit.services import audit_event_record, audited_transaction
from governance.access.decision import require

MANAGE = "retention.manage"
MANAGE_ORGANIZATION = "retention.manage_organization"

MAX_MINIMUM_MONTHS = 1200  # a hundred years: anything longer is a typing slip


def retention_policy_set(
    *, actor, workspace, frameworks: list[str], minimum_months: int | None
) -> RetentionPolicy:
    """Set the frameworks in scope and the workspace's own minimum; record what the retention was
    and what it is now, with the reasons."""
    unknown = sorted(set(frameworks) - set(RetentionFramework.values))
    if unknown:
        raise ValidationError({"frameworks": f"Unknown framework(s): {', '.join(unknown)}."})
    if minimum_months is not None and not 1 <= minimum_months <= MAX_MINIMUM_MONTHS:
        raise ValidationError(
            {"minimum_months": f"Give a number of months between 1 and {MAX_MINIMUM_MONTHS}."}
        )
    with audited_transaction():
        require(actor, MANAGE, workspace, fresh=True)
        policy, _ = RetentionPolicy.objects.select_for_update().get_or_create(workspace=workspace)
        before = {"frameworks": list(policy.frameworks), "minimum_months": policy.minimum_months}
        before_retention = policy_retention(policy if policy.frameworks or policy.minimum_months else None)
        policy.frameworks = sorted(set(frameworks))
        policy.minimum_months = minimum_months
        policy.updated_at = timezone.now()
        policy.save()
        after_retention = policy_retention(policy)
        audit_event_record(
            action=RetentionEvent.POLICY_CHANGED,
            actor=actor,
            target=policy,
            organization_id=workspace.organization_id,
            workspace_id=workspace.pk,
            data={
                "before": before,
                "after": {"frameworks": policy.frameworks, "minimum_months": policy.minimum_months},
                "retention_months": {"before": before_retention.months, "after": after_retention.months},
                "reasons": list(after_retention.deciding),
            },
        )
    return policy


def legal_hold_place(
    *,
    actor,
    organization,
    workspace=None,
    subject=None,
    target_type: str = "",
    target_id: str = "",
    starts_on: date | None = None,
    ends_on: date | None = None,
    reason: str,
    owner,
) -> LegalHold:
    """Place a hold: from now on no event it covers is pruned or erased until it is released."""
    with audited_transaction():
        _require_hold(actor, organization, workspace)  # who asks, before what they ask
        errors = {}
        if not (reason or "").strip():
            errors["reason"] = "Say why the events must be kept (the matter, the request, the reference)."
        if workspace is not None and workspace.organization_id != organization.pk:
            errors["workspace"] = "The workspace belongs to another organisation."
        if starts_on and ends_on and ends_on < starts_on:
            errors["ends_on"] = "The end comes before the start."
        if bool(target_type) != bool(target_id):
            errors["target_id" if target_type else "target_type"] = (
                "Give both the kind of object and its id, or neither."
            )
        if owner is None:
            errors["owner"] = "Name who answers for the hold."
        elif owner.organization_id != organization.pk:
            errors["owner"] = "The owner must be a person of this organisation."
        if subject is not None and subject.organization_id != organization.pk:
            errors["subject"] = "The subject must be a person of this organisation."
        if errors:
            raise ValidationError(errors)
        hold = LegalHold.objects.create(
            organization=organization,
            workspace=workspace,
            subject=subject,
            subject_label=str(subject)[:254] if subject is not None else "",
            target_type=target_type,
            target_id=target_id,
            starts_on=starts_on,
            ends_on=ends_on,
            reason=reason.strip(),
            owner=owner,
            placed_by=actor,
        )
        audit_event_record(
            action=RetentionEvent.HOLD_PLACED,
            actor=actor,
            target=hold,
            organization_id=organization.pk,
            workspace_id=workspace.pk if workspace is not None else None,
            data={
                "hold": str(hold.uid),
                "covers": hold.scope_label,
                "reason": hold.reason,
                "owner": str(owner),
            },
        )
    return hold


def legal_hold_release(*, actor, hold: LegalHold, reason: str) -> LegalHold:
    """Release a hold: its events become prunable again when their retention allows."""
    if not (reason or "").strip():
        raise ValidationError(
            {"release_reason": "Say why the hold ends (matter closed, request withdrawn…)."}
        )
    with audited_transaction():
        hold = (
            LegalHold.objects.select_for_update(of=("self",))
            .select_related("organization", "workspace")
            .get(pk=hold.pk)
        )
        _require_hold(actor, hold.organization, hold.workspace)
        if hold.released_at is not None:
            raise ValidationError("This hold was already released.")
        hold.released_at = timezone.now()
        hold.released_by = actor
        hold.release_reason = reason.strip()
        hold.save(update_fields=["released_at", "released_by", "release_reason"])
        audit_event_record(
            action=RetentionEvent.HOLD_RELEASED,
            actor=actor,
            target=hold,
            organization_id=hold.organization_id,
            workspace_id=hold.workspace_id,
            data={"hold": str(hold.uid), "covers": hold.scope_label, "reason": hold.release_reason},
        )
    return hold


def _require_hold(actor, organization, workspace) -> None:
    """A workspace's holds are its compliance officers'; holds over the whole organisation are
    for its platform administrators."""
    if workspace is not None:
        require(actor, MANAGE, workspace, fresh=True)
    else:
        require(actor, MANAGE_ORGANIZATION, organization, fresh=True)


def hold_filter(hold: LegalHold) -> Q:
    """The ledger events ``hold`` covers, as a filter on ``AuditEvent``."""
    covered = Q(organization_id=hold.organization_id)
    if hold.workspace_id is not None:
        covered &= Q(workspace_id=hold.workspace_id)
    if hold.subject_id is not None:
        covered &= Q(actor_id=hold.subject_id) | Q(
            target_type="accounts.user", target_id=str(hold.subject_id)
        )
    if hold.target_type:
        covered &= Q(target_type=hold.target_type, target_id=hold.target_id)
    if hold.starts_on is not None:
        covered &= Q(occurred_at__gte=_utc_midnight(hold.starts_on))
    if hold.ends_on is not None:
        covered &= Q(occurred_at__lt=_utc_midnight(hold.ends_on + timedelta(days=1)))
    return covered


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def active_holds(organization_ids=None) -> list[LegalHold]:
    holds = LegalHold.objects.filter(released_at__isnull=True).select_related("workspace")
    if organization_ids is not None:
        holds = holds.filter(organization_id__in=list(organization_ids))
    return list(holds)


def held_filter(holds: list[LegalHold]) -> Q | None:
    """Every event any of ``holds`` covers (None when there is no hold)."""
    combined = None
    for hold in holds:
        combined = hold_filter(hold) if combined is None else combined | hold_filter(hold)
    return combined


def holds_covering(events_filter: Q, holds: list[LegalHold]) -> list[LegalHold]:
    """The holds that cover at least one event of ``events_filter``."""
    return [hold for hold in holds if AuditEvent.objects.filter(events_filter, hold_filter(hold)).exists()]
