"""The incident stop: halting every execution of a workspace or of a whole organisation.

Raising a halt is one committed row and its ledger event; from that commit on no step of a run in
its scope starts (every claim reads the active halts) and no trigger is accepted. The runs
themselves are then marked ``halted`` by the ``halts_enforce`` task, sent at once after the
commit and run by the beat as a backstop. Releasing a halt takes a second person — the database
refuses a release by the one who raised it — and does not restart anything: an operator resumes
each halted run on purpose.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_event_record, audited_transaction
from governance.access.decision import require
from governance.core.text import checked_reason
from governance.tenancy.models import Organization, Workspace
from workflows.events import WorkflowEvent
from workflows.executions.models import Halt, HaltScope


def enforce_after_commit() -> None:
    """Send the task that marks the runs under a new halt or quarantine ``halted`` (after commit).

    The claim check already stops every step; this only hurries the bookkeeping. A broker that is
    down leaves it to the beat."""

    def send() -> None:
        # Tasks sit above services (they call them); a service only starts one once it has committed.
        from workflows.executions.tasks import halts_enforce

        try:
            halts_enforce.delay()
        except Exception:  # the beat runs the same task every 15 s
            return

    transaction.on_commit(send)


def halt_raise(
    *, actor, reason: str, workspace: Workspace | None = None, organization: Organization | None = None
) -> Halt:
    """Halt every execution of ``workspace`` (owners, compliance officers, platform administrators)
    or, given ``organization`` instead, of every workspace of it (platform administrators)."""
    if (workspace is None) == (organization is None):
        raise ValidationError({"scope": "Choose a workspace, or the whole organisation."})
    reason = checked_reason(reason)
    with audited_transaction():
        if workspace is not None:
            target = Workspace.objects.select_for_update().get(pk=workspace.pk)
            require(actor, "execution.halt", target, fresh=True)
            organization_id, scope = target.organization_id, HaltScope.WORKSPACE
        else:
            target = Organization.objects.select_for_update().get(pk=organization.pk)
            require(actor, "organization.halt", target, fresh=True)
            organization_id, scope = target.pk, HaltScope.ORGANIZATION
        workspace_id = target.pk if scope == HaltScope.WORKSPACE else None
        existing = Halt.objects.filter(
            organization_id=organization_id, workspace_id=workspace_id, released_at__isnull=True
        ).first()
        if existing is not None:
            raise ValidationError(
                {
                    "scope": f"Already halted since {existing.raised_at:%Y-%m-%d %H:%M} UTC by {existing.raised_by}."
                }
            )
        try:
            with transaction.atomic():
                halt = Halt.objects.create(
                    organization_id=organization_id,
                    workspace_id=workspace_id,
                    scope=scope,
                    reason=reason,
                    raised_by=actor,
                )
        except IntegrityError:  # raised by someone else in the same instant
            raise ValidationError({"scope": "Already halted by someone else just now."}) from None
        audit_event_record(
            action=WorkflowEvent.HALT_RAISED,
            actor=actor,
            target=halt,
            organization_id=organization_id,
            workspace_id=workspace_id,
            data={"scope": scope, "reason": reason},
        )
        enforce_after_commit()
    return halt


def halt_release(*, actor, halt: Halt, reason: str) -> Halt:
    """Lift a halt: someone other than the person who raised it, holding the same right. The
    halted runs stay halted until an operator resumes them."""
    reason = checked_reason(reason)
    with audited_transaction():
        halt = (
            Halt.objects.select_for_update(of=("self",))
            .select_related("workspace", "organization")
            .get(pk=halt.pk)
        )
        target = halt.workspace if halt.scope == HaltScope.WORKSPACE else halt.organization
        require(
            actor,
            "execution.halt" if halt.scope == HaltScope.WORKSPACE else "organization.halt",
            target,
            fresh=True,
        )
        if halt.released_at is not None:
            raise ValidationError(
                {"halt": f"Already released by {halt.released_by} at {halt.released_at:%Y-%m-%d %H:%M} UTC."}
            )
        if halt.raised_by_id == getattr(actor, "pk", None):
            raise ValidationError(
                {"halt": "You raised this halt: a second person must release it (two people decide)."}
            )
        halt.released_by = actor
        halt.released_at = timezone.now()
        halt.release_reason = reason
        halt.save(update_fields=["released_by", "released_at", "release_reason"])
        audit_event_record(
            action=WorkflowEvent.HALT_RELEASED,
            actor=actor,
            target=halt,
            organization_id=halt.organization_id,
            workspace_id=halt.workspace_id,
            data={"scope": halt.scope, "reason": reason, "raised_by": halt.raised_by_id},
        )
    return halt
