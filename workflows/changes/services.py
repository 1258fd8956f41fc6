"""Every change to workflows: versions, change requests, approvals and activation, with their events.

Each function re-checks the actor's permission (and the attribute policies) inside its
transaction, locks the rows it decides on, and records the ledger event in the same transaction.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.services import audit_event_record, audited_transaction
from governance.access.decision import AccessDenied, Decision, decide, require
from governance.core.choices import ReviewDecision
from governance.core.context import current_context
from governance.core.errors import ReasonedRefusal
from governance.tenancy.models import RolePermission
from workflows.changes.checks import definition_refusal
from workflows.changes.definition import content_hash, diff_definitions, validate_definition
from workflows.changes.models import (
    Approval,
    ChangeRequest,
    ChangeState,
    Workflow,
    WorkflowStatus,
    WorkflowVersion,
)
from workflows.changes.selectors import approvable_tiers
from workflows.changes.tiers import CHECKLIST, required_tiers
from workflows.changes.transitions import OPEN, transition
from workflows.changes.waiting import (
    activation_context,
    approval_basis,
    approval_standing,
    manager_refusal,
    portal_activation,
    waiting_reason,
)
from workflows.events import WorkflowEvent
from workflows.integrations.selectors import integrations_by_slug


def _check_definition(workspace, definition: Any) -> None:
    deciding = RolePermission.objects.filter(action="human_task.decide").values_list("role_id", flat=True)
    errors = validate_definition(
        definition, integrations=integrations_by_slug(workspace), deciding_roles=frozenset(deciding)
    )
    if errors:
        raise ValidationError(
            {"definition": [f"{e.path}: {e.message}" if e.path else e.message for e in errors]}
        )


def _where(workflow: Workflow) -> dict[str, int]:
    return {"organization_id": workflow.workspace.organization_id, "workspace_id": workflow.workspace_id}


def workflow_create(
    *,
    actor,
    workspace,
    name: str,
    slug: str,
    environment: str,
    data_region: str,
    handles_pii: bool,
    definition: dict,
    summary: str,
) -> ChangeRequest:
    """Create a workflow (a draft) with its first version and the change request that will activate it."""
    with audited_transaction():
        workflow = Workflow(
            workspace=workspace,
            name=name,
            slug=slug,
            environment=environment,
            data_region=data_region,
            handles_pii=handles_pii,
            owner=actor,
        )
        require(actor, "workflow.edit", workflow, fresh=True)
        workflow.full_clean()
        _check_definition(workspace, definition)
        workflow.save()
        audit_event_record(
            action=WorkflowEvent.WORKFLOW_CREATED,
            actor=actor,
            target=workflow,
            **_where(workflow),
            data={
                "name": name,
                "environment": environment,
                "data_region": data_region,
                "handles_pii": handles_pii,
            },
        )
        return _new_version(actor=actor, workflow=workflow, definition=definition, base=None, summary=summary)


def workflow_version_create(
    *, actor, workflow: Workflow, definition: dict, base_version: WorkflowVersion | None, summary: str
) -> ChangeRequest:
    """Save an edited definition as the next version, with a draft change request.

    ``base_version`` is the version the edit started from; if the workflow has moved on since,
    the edit is refused with a conflict rather than silently overwriting someone's work.
    """
    with audited_transaction():
        workflow = Workflow.objects.select_for_update().select_related("workspace").get(pk=workflow.pk)
        require(actor, "workflow.edit", workflow, fresh=True)
        latest = workflow.versions.order_by("-number").first()
        if latest is not None and (base_version is None or base_version.pk != latest.pk):
            raise ValidationError(
                {
                    "base_version": (
                        f"Conflict: the workflow changed since you opened it (now version {latest.number}, by "
                        f"{latest.created_by}). Reload it and apply your edit again."
                    )
                }
            )
        _check_definition(workflow.workspace, definition)
        return _new_version(
            actor=actor, workflow=workflow, definition=definition, base=latest, summary=summary
        )


def diff_summary(diff: dict) -> dict:
    """What the ledger keeps of a diff: which steps changed how, not their bodies (those live in
    the immutable versions, identified by their content hash), so an event stays small."""
    return {
        "new_workflow": diff.get("new_workflow", False),
        "trigger_changed": diff.get("trigger") is not None,
        "order_changed": diff.get("order_changed", False),
        "steps": [
            {"step": c["step"], "kind": c["kind"], "type": c["type"], "fields": c.get("fields", [])}
            for c in diff.get("steps", [])
        ],
    }


def _new_version(*, actor, workflow: Workflow, definition: dict, base, summary: str) -> ChangeRequest:
    if not summary.strip():
        raise ValidationError({"summary": "Say in a line what this change does."})
    number = (workflow.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    version = WorkflowVersion.objects.create(
        workflow=workflow,
        number=number,
        definition=definition,
        content_hash=content_hash(definition),
        based_on=base,
        created_by=actor,
    )
    for stale in ChangeRequest.objects.select_for_update().filter(workflow=workflow, state__in=OPEN):
        transition(stale, "supersede")
        audit_event_record(
            action=WorkflowEvent.WORKFLOW_CHANGE_SUPERSEDED,
            actor=actor,
            target=stale,
            **_where(workflow),
            data={"by_version": number},
        )
    active = workflow.active_version.definition if workflow.active_version_id else None
    change = ChangeRequest.objects.create(
        workflow=workflow,
        version=version,
        base_version=workflow.active_version,
        author=actor,
        summary=summary.strip(),
        diff=diff_definitions(active, definition),
    )
    audit_event_record(
        action=WorkflowEvent.WORKFLOW_VERSION_CREATED,
        actor=actor,
        target=version,
        **_where(workflow),
        data={
            "version": number,
            "content_hash": version.content_hash,
            "summary": change.summary,
            "diff": diff_summary(change.diff),
        },
    )
    return change


def change_request_submit(*, actor, change: ChangeRequest) -> ChangeRequest:
    """Submit a draft for review: the approvals it needs are derived now, from the diff."""
    with audited_transaction():
        change = (
            ChangeRequest.objects.select_for_update().select_related("workflow__workspace").get(pk=change.pk)
        )
        if change.author_id != actor.pk:
            raise ReasonedRefusal("Only the author submits a change.")
        require(actor, "workflow.edit", change.workflow, fresh=True)
        tiers = required_tiers(
            workflow=change.workflow,
            diff=change.diff,
            integrations=integrations_by_slug(change.workflow.workspace),
        )
        change.required_tiers = [tier.as_dict() for tier in tiers]
        change.submitted_at = timezone.now()
        change.save(update_fields=["required_tiers", "submitted_at"])
        transition(change, "submit")
        audit_event_record(
            action=WorkflowEvent.WORKFLOW_CHANGE_SUBMITTED,
            actor=actor,
            target=change,
            **_where(change.workflow),
            data={
                "summary": change.summary,
                "version": change.version.number,
                "tiers": [t.code for t in tiers],
                "diff": diff_summary(change.diff),
            },
        )
    transaction.on_commit(lambda: _notify("submitted", change.pk))
    return change


def change_request_withdraw(*, actor, change: ChangeRequest) -> ChangeRequest:
    with audited_transaction():
        change = (
            ChangeRequest.objects.select_for_update().select_related("workflow__workspace").get(pk=change.pk)
        )
        if change.author_id != actor.pk:
            raise ReasonedRefusal("Only the author withdraws a change.")
        transition(change, "withdraw")
        audit_event_record(
            action=WorkflowEvent.WORKFLOW_CHANGE_WITHDRAWN,
            actor=actor,
            target=change,
            **_where(change.workflow),
            data={"summary": change.summary},
        )
    return change


def change_request_decide(
    *,
    actor,
    change: ChangeRequest,
    tier: str,
    approve: bool,
    comment: str,
    checklist: dict[str, bool] | None = None,
) -> ChangeRequest:
    """Approve or reject one tier of a change; the last approval applies it when the policies allow."""
    with audited_transaction():
        change = (
            ChangeRequest.objects.select_for_update(of=("self",))
            .select_related("workflow__workspace", "author", "version")
            .get(pk=change.pk)
        )
        _require_reviewer(actor, change, tier)
        if not comment.strip():
            raise ValidationError({"comment": "A comment is required: say why."})
        spec = next(t for t in change.required_tiers if t["code"] == tier)
        answers = (
            {code: bool((checklist or {}).get(code)) for code, _ in CHECKLIST} if spec["checklist"] else {}
        )
        if approve and spec["checklist"] and not all(answers.values()):
            raise ValidationError({"checklist": "Complete the security-review checklist before approving."})
        if approve:
            _refuse_by_checks(change.workflow, change.version.definition)
        decision = Approval.objects.create(
            change=change,
            reviewer=actor,
            tier=tier,
            decision=ReviewDecision.APPROVE if approve else ReviewDecision.REJECT,
            comment=comment.strip(),
            checklist=answers,
        )
        approved = {a.tier for a in change.approvals.filter(decision=ReviewDecision.APPROVE)}
        if not approve:
            transition(change, "reject")
        elif approved >= {t["code"] for t in change.required_tiers}:
            transition(change, "approve")
        else:
            transition(change, "review")
        if change.state in (ChangeState.REJECTED, ChangeState.APPROVED):
            change.decided_at = timezone.now()
            change.save(update_fields=["decided_at"])
        audit_event_record(
            action=WorkflowEvent.WORKFLOW_CHANGE_APPROVED
            if approve
            else WorkflowEvent.WORKFLOW_CHANGE_REJECTED,
            actor=actor,
            target=change,
            **_where(change.workflow),
            data={
                "tier": tier,
                "comment": comment.strip(),
                "checklist": answers,
                "state": change.state,
                "version": change.version.number,
            },
        )
        if change.state == ChangeState.APPROVED:
            change = _apply_if_allowed(actor, change)
    # The mail describes this decision and the state it left, not whatever holds when it is sent.
    state = change.state
    transaction.on_commit(lambda: _notify("decided", change.pk, approval_id=decision.pk, state=state))
    return change


def _refuse_by_checks(workflow: Workflow, definition: Any, *, field: str = "definition") -> None:
    """A version another sub-domain refuses (its AI steps name a model the AI register refuses, or
    a step deciding about people lacks a passing bias test) is never approved, applied or
    activated: a field error saying which step and why."""
    refusal = definition_refusal(workflow, definition)
    if refusal:
        raise ValidationError({field: refusal})


def _hold_for_checks(change: ChangeRequest, reason: str, *, at) -> None:
    """The portal does not apply an approved change a check now refuses (e.g. its model was
    blocked since): it says why it waits (recorded when the reason is new) until that changes."""
    if change.deferral_reason == reason and change.deferred_until is None:
        return
    change.deferral_reason, change.deferred_until = reason, None
    change.save(update_fields=["deferral_reason", "deferred_until"])
    audit_event_record(
        action=WorkflowEvent.WORKFLOW_CHANGE_APPLY_DEFERRED,
        actor=None,
        target=change,
        **_where(change.workflow),
        data={"reason": reason, "until": None, "evaluated_at": at},
    )


def _require_reviewer(actor, change: ChangeRequest, tier: str) -> None:
    """Refuse (403) whoever may not decide ``tier`` of ``change``; refuse (400) a decision the
    change's state or its tiers rule out. Who you are is asked first, so that someone without
    a say learns nothing of the change's progress."""
    if change.author_id == actor.pk:
        raise ReasonedRefusal("You wrote this change; someone else must review it.")
    is_manager = change.author.manager_id == actor.pk
    reviews = decide(actor, "workflow.approve", change.workflow).allowed
    if not (reviews or is_manager):
        raise ReasonedRefusal(
            "You cannot review this change: none of your roles reviews this workspace's changes, "
            "and you are not the author's manager."
        )
    if tier in approvable_tiers(actor, change):
        return
    spec = next((t for t in change.required_tiers if t["code"] == tier), None)
    if is_manager and spec is not None and spec["approver"] == "manager":
        messages, policies = manager_refusal(actor, change.workflow)
        if policies:  # the policies' rules about people hold for the manager too
            denial = Decision(
                False,
                "workflow.approve",
                messages,
                actor.pk,
                change.workflow,
                change.workflow.workspace.organization_id,
                change.workflow.workspace_id,
                policies,
            )
            request = current_context()
            if request is not None:  # recorded with the request's other refusals, as decide() does
                request.denials.append(denial)
            raise AccessDenied(denial)
    if change.state not in (ChangeState.SUBMITTED, ChangeState.IN_REVIEW):
        raise ValidationError({"state": f"This change is already {change.get_state_display().lower()}."})
    if spec is None:
        raise ValidationError({"tier": f"This change needs no {tier!r} approval."})
    if change.approvals.filter(reviewer=actor).exists():
        raise ReasonedRefusal("You decided another tier of this change: one person decides one tier.")
    if change.approvals.filter(tier=tier, decision=ReviewDecision.APPROVE).exists():
        raise ValidationError({"tier": f"The {tier!r} approval of this change is given already."})
    who = "the author's manager" if spec["approver"] == "manager" else "a reviewer of this workspace"
    raise ReasonedRefusal(f"You cannot decide the {tier!r} approval of this change: only {who} does.")


def _apply_if_allowed(actor, change: ChangeRequest) -> ChangeRequest:
    """Apply an approved change now if its last approver may activate it; else say why it waits
    (the portal applies it when the policies allow, or an officer or owner applies it)."""
    at = timezone.now()
    if approval_basis(change, at=at) is None:  # an earlier approval lapsed since it was given
        _defer(change, actor=actor, at=at)
        return change
    decision = decide(actor, "workflow.activate", change.workflow, activation_context(change, at), fresh=True)
    if decision.allowed:
        return change_request_apply(actor=actor, change=change)
    _defer(change, actor=actor, at=at, refusal=decision)
    return change


def _defer(change: ChangeRequest, *, actor, at, refusal=None) -> None:
    """Store why ``change`` (locked, approved) waits and until when, with its event. A refusal to a
    person is always recorded; the portal's own re-evaluations only when the reason changed."""
    reason, until = waiting_reason(change, at=at)
    unchanged = reason == change.deferral_reason and until == change.deferred_until
    if unchanged and refusal is None:
        return
    if not unchanged:
        change.deferral_reason, change.deferred_until = reason, until
        change.save(update_fields=["deferral_reason", "deferred_until"])
    data: dict[str, Any] = {"reason": reason, "until": until, "evaluated_at": at}
    if refusal is not None:
        data["refused_to"] = {"reasons": list(refusal.reasons), "policies": list(refusal.policies)}
    audit_event_record(
        action=WorkflowEvent.WORKFLOW_CHANGE_APPLY_DEFERRED,
        actor=actor,
        target=change,
        **_where(change.workflow),
        data=data,
    )


def change_request_apply(
    *, actor, change: ChangeRequest, basis: dict | None = None, at=None
) -> ChangeRequest:
    """Make a fully approved change's version the active one, atomically.

    ``actor`` is the person applying it (their permission and the policies, at ``at`` or now, are
    checked here), or None for the portal itself, whose ``basis`` (the approvals and the policy
    decision, from ``workflows.changes.waiting.portal_activation``) the caller established under
    the same lock.
    """
    with audited_transaction():
        change = (
            ChangeRequest.objects.select_for_update(of=("self",)).select_related("workflow").get(pk=change.pk)
        )
        workflow = Workflow.objects.select_for_update().select_related("workspace").get(pk=change.workflow_id)
        if actor is not None:
            privacy = (
                change.approvals.filter(tier="privacy", decision=ReviewDecision.APPROVE).exists()
                or not workflow.handles_pii
            )
            context = {"privacy_approved": privacy, **({"at": at} if at else {})}
            require(actor, "workflow.activate", workflow, context, fresh=True)
        elif basis is None:
            raise ValueError("The portal applies a change only on the basis of its approvals.")
        _refuse_by_checks(workflow, change.version.definition)
        transition(change, "apply")
        change.deferral_reason, change.deferred_until = "", None
        change.save(update_fields=["deferral_reason", "deferred_until"])
        previous = workflow.active_version
        workflow.active_version = change.version
        was_active = workflow.status == WorkflowStatus.ACTIVE
        if workflow.status == WorkflowStatus.DRAFT:
            workflow.status = WorkflowStatus.ACTIVE  # a new workflow's first version starts it
        # An inactive or quarantined workflow keeps its status: approving a change never lifts a
        # quarantine; reactivating is its own, deliberate decision.
        workflow.save(update_fields=["active_version", "status"])
        audit_event_record(
            action=WorkflowEvent.WORKFLOW_CHANGE_APPLIED,
            actor=actor,
            target=change,
            covers=[workflow],  # its active version (and status) changed with the change
            **_where(workflow),
            data={
                "version": change.version.number,
                "previous_version": previous.number if previous else None,
                "content_hash": change.version.content_hash,
                **(basis or {}),
            },
        )
        if not was_active and workflow.status == WorkflowStatus.ACTIVE:
            audit_event_record(
                action=WorkflowEvent.WORKFLOW_ACTIVATED,
                actor=actor,
                target=workflow,
                **_where(workflow),
                data={"version": change.version.number},
            )
    return change


def change_request_apply_now(*, actor, change: ChangeRequest, at=None) -> ChangeRequest:
    """An officer's or owner's *Apply now* of an approved change that waits.

    The decision point decides at ``at`` (now): the actor's role, and the policies (outside
    business hours only under the actor's own on-call override). Whoever wrote the change never
    applies it. A refusal by the policies is recorded and shown on the change before
    ``AccessDenied`` is raised; a refusal by role is the decision point's 403 alone.
    """
    at = at or timezone.now()
    with audited_transaction():
        change = (
            ChangeRequest.objects.select_for_update(of=("self",))
            .select_related("workflow__workspace", "author")
            .get(pk=change.pk)
        )
        decision = decide(
            actor, "workflow.activate", change.workflow, activation_context(change, at), fresh=True
        )
        if not decision.allowed and not decision.policies:
            raise AccessDenied(decision)  # no role that activates: the decision point's refusal alone
        if change.state != ChangeState.APPROVED:
            raise ValidationError(
                {"state": f"This change is {change.get_state_display().lower()}, not waiting."}
            )
        if change.author_id == actor.pk:
            raise ValidationError({"author": "You wrote this change; another officer or owner applies it."})
        if decision.allowed:
            basis = approval_basis(change, at=at)
            if basis is None:
                _, lapsed = approval_standing(change, at=at)
                raise ValidationError(
                    {
                        "state": " ".join(
                            ["Its approvals are no longer complete.", *(x.describe() for x in lapsed)]
                        )
                    }
                )
            record = {
                "applied_by": "apply_now",
                "basis": {"approvals": [a.pk for a in basis]},
                "decision": {"allowed": True, "evaluated_at": at, "reasons": list(decision.reasons)},
            }
            return change_request_apply(actor=actor, change=change, basis=record, at=at)
        _defer(change, actor=actor, at=at, refusal=decision)
    raise AccessDenied(decision)


def change_request_apply_as_portal(*, change_id: int, at=None) -> ChangeRequest | None:
    """The portal applies one approved change if the policies allow it at ``at`` (now), on the
    basis of its approvals; else it records why it waits. Safe under concurrency: a change locked
    by another run is skipped, and one already applied is no longer approved. Returns the change
    when it was applied."""
    at = at or timezone.now()
    with audited_transaction():
        change = (
            ChangeRequest.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("workflow__workspace")
            .filter(pk=change_id, state=ChangeState.APPROVED)
            .first()
        )
        if change is None:
            return None
        refusal = definition_refusal(change.workflow, change.version.definition)
        if refusal:
            _hold_for_checks(change, refusal, at=at)
            return None
        activation = portal_activation(change, at=at)
        if activation.allowed:
            record = {"applied_by": "portal", **activation.as_record()}
            return change_request_apply(actor=None, change=change, basis=record)
        _defer(change, actor=None, at=at)
    return None


def changes_apply_due(*, at=None) -> list[int]:
    """The beat job: every approved change not yet applied is applied as soon as the policies allow
    (each in its own transaction). Returns the ids of the changes applied."""
    pending = ChangeRequest.objects.filter(state=ChangeState.APPROVED).order_by("decided_at", "id")
    applied = []
    for change_id in pending.values_list("pk", flat=True):
        if change_request_apply_as_portal(change_id=change_id, at=at) is not None:
            applied.append(change_id)
    return applied


def _halt_runs_after_commit() -> None:
    # The engine halts the quarantined workflow's runs (its claim check already stops each step).
    from workflows.executions.halts import enforce_after_commit

    enforce_after_commit()


def _notify(kind: str, change_id: int, **details) -> None:
    # Tasks sit above services (they call them); a service only starts one once it has committed.
    from workflows.changes.tasks import notify_change

    notify_change.delay(kind, change_id, **details)


def workflow_set_status(*, actor, workflow: Workflow, status: str, reason: str) -> Workflow:
    """Deactivate, reactivate or quarantine a workflow (officers and owners), with a reason.

    Quarantine is the incident switch: the workflow stops at once (its runs end ``halted``) and
    stays stopped until a second person — not the one who quarantined it — lifts it on purpose.
    """
    allowed = {WorkflowStatus.ACTIVE, WorkflowStatus.INACTIVE, WorkflowStatus.QUARANTINED}
    if status not in allowed:
        raise ValidationError({"status": "Choose active, inactive or quarantined."})
    if not reason.strip():
        raise ValidationError({"reason": "Say why."})
    with audited_transaction():
        workflow = Workflow.objects.select_for_update().select_related("workspace").get(pk=workflow.pk)
        # Stopping is its own action: the rules that guard activation (business hours, privacy
        # approval) must never stand in the way of the incident switch.
        require(
            actor,
            "workflow.activate" if status == WorkflowStatus.ACTIVE else "workflow.stop",
            workflow,
            fresh=True,
        )
        if status == WorkflowStatus.ACTIVE and workflow.active_version_id is None:
            raise ValidationError({"status": "No approved version yet: approve a change first."})
        if status == WorkflowStatus.ACTIVE:
            _refuse_by_checks(workflow, workflow.active_version.definition, field="status")
        if workflow.status == status:
            raise ValidationError(
                {"status": f"The workflow is already {workflow.get_status_display().lower()}."}
            )
        before = workflow.status
        if before == WorkflowStatus.QUARANTINED and workflow.quarantined_by_id == getattr(actor, "pk", None):
            raise ValidationError(
                {"status": "You quarantined this workflow: a second person must lift the quarantine."}
            )
        workflow.status = status
        workflow.quarantined_by = actor if status == WorkflowStatus.QUARANTINED else None
        workflow.save(update_fields=["status", "quarantined_by"])
        if status == WorkflowStatus.QUARANTINED:
            _halt_runs_after_commit()
        action = (
            WorkflowEvent.WORKFLOW_ACTIVATED
            if status == WorkflowStatus.ACTIVE
            else WorkflowEvent.WORKFLOW_DEACTIVATED
        )
        audit_event_record(
            action=action,
            actor=actor,
            target=workflow,
            **_where(workflow),
            data={"diff": {"status": {"before": before, "after": status}}, "reason": reason.strip()},
        )
    return workflow
