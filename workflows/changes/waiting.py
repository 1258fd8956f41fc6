"""Why an approved change is not applied yet, and when the portal itself may apply it.

A fully approved change is applied at once when its last approver may activate the workflow.
When that approver may not (a manager without a role in the workspace), or the attribute
policies defer it (a production change approved outside business hours), the portal applies it
later, on the approvals' authority: ``portal_activation`` re-checks every approval at that
moment (``approval_standing``) and asks the decision point's policies about the last approver,
with their own attributes. These are reads; the writes are in ``workflows.changes.services``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from governance.access.decision import decide
from governance.access.models import OnCallOverride
from governance.access.policies import policy_outcome
from governance.core.choices import ReviewDecision
from governance.core.context import current_context
from governance.core.resources import resource_for
from workflows.changes.models import Approval, ChangeRequest, Workflow

ACTIVATE = "workflow.activate"
APPROVE = "workflow.approve"


def _ask(user, workflow: Workflow, context: dict[str, Any], action: str = ACTIVATE):
    """The decision point's answer about someone other than the requester (an approver, a person
    on call): a question the portal asks, not a refusal of their request, so it is kept out of
    the request's denials (which the ledger records when the request is refused)."""
    request = current_context()
    seen = len(request.denials) if request is not None else 0
    decision = decide(user, action, workflow, context, fresh=True)
    if request is not None:
        del request.denials[seen:]
    return decision


@dataclass(frozen=True)
class Activation:
    """Whether the portal may apply a change at ``at``, and on what basis."""

    allowed: bool
    at: datetime
    approval_ids: tuple[int, ...]
    reasons: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    override_id: int | None = None
    override_holder: str = ""
    evaluated_for: Approval | None = None

    def as_record(self) -> dict[str, Any]:
        """What the ledger keeps of the decision: the approvals it rests on and what the policies said."""
        return {
            "basis": {"approvals": list(self.approval_ids)},
            "decision": {
                "allowed": self.allowed,
                "evaluated_at": self.at,
                "reasons": list(self.reasons),
                "policies": list(self.policies),
                "on_call_override": self.override_id,
                "on_call_holder": self.override_holder or None,
                "evaluated_for": (
                    {"approval": self.evaluated_for.pk, "reviewer": self.evaluated_for.reviewer_id}
                    if self.evaluated_for is not None
                    else None
                ),
            },
        }


@dataclass(frozen=True)
class Lapse:
    """An approval that was given but no longer holds, and why."""

    approval: Approval
    reason: str

    def describe(self) -> str:
        return f"The {self.approval.tier} approval of {self.approval.reviewer.email} no longer holds: {self.reason}"


def manager_refusal(
    manager, workflow: Workflow, at: datetime | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the attribute policies say against ``manager`` approving a change of ``workflow``
    (their messages and names; empty when they allow it). The manager approves by being the
    author's manager, not by a role, so the decision point's role check does not apply to them;
    its rules about people (the region rule above all) do."""
    outcome = policy_outcome(
        manager,
        APPROVE,
        workflow,
        resource_for(workflow),
        workflow.workspace.organization_id,
        {"at": at} if at is not None else {},
    )
    if outcome is None or not outcome.forbidden:
        return (), ()
    return tuple(outcome.messages), tuple(outcome.policies)


def _lapse_of(change: ChangeRequest, approval: Approval, at: datetime) -> str:
    """Why ``approval`` no longer holds at ``at`` ("" when it does): its approver must still be
    active, still hold what let them approve (a role that approves the workspace's changes, or
    being the author's manager) and still pass the policies' rules about people."""
    reviewer, workflow = approval.reviewer, change.workflow
    if not reviewer.is_active:
        return "the account is deactivated."
    if reviewer.organization_id != workflow.workspace.organization_id:
        return "the account belongs to another organisation now."
    spec = next((t for t in change.required_tiers if t["code"] == approval.tier), None)
    if spec is None:
        return "the change no longer needs this tier."
    if spec["approver"] == "manager":
        if change.author.manager_id != reviewer.pk:
            return "they are no longer the author's manager."
        messages, _ = manager_refusal(reviewer, workflow, at)
        return " ".join(messages)
    decision = _ask(reviewer, workflow, {"at": at}, APPROVE)
    if decision.allowed:
        return ""
    if decision.policies:
        return " ".join(decision.reasons)
    return "none of their roles approves this workspace's changes any more."


def approval_standing(
    change: ChangeRequest, *, at: datetime | None = None
) -> tuple[list[Approval], list[Lapse]]:
    """The approvals of ``change`` that hold at ``at`` (now), oldest first, and those that lapsed."""
    at = at or timezone.now()
    approvals = change.approvals.filter(decision=ReviewDecision.APPROVE).select_related("reviewer")
    holding, lapsed = [], []
    for approval in approvals.order_by("decided_at", "id"):
        reason = _lapse_of(change, approval, at)
        if reason:
            lapsed.append(Lapse(approval, reason))
        else:
            holding.append(approval)
    return holding, lapsed


def approval_basis(change: ChangeRequest, *, at: datetime | None = None) -> list[Approval] | None:
    """The approvals that together cover every required tier and still hold at ``at`` (now), or
    None when they do not (any longer)."""
    if change.approvals.filter(decision=ReviewDecision.REJECT).exists():
        return None
    holding, lapsed = approval_standing(change, at=at)
    if lapsed or not {a.tier for a in holding} >= {t["code"] for t in change.required_tiers}:
        return None
    return holding


def activation_context(change: ChangeRequest, at: datetime) -> dict[str, Any]:
    """The request attributes of an activation: the moment, and whether privacy approved."""
    privacy = (
        not change.workflow.handles_pii
        or change.approvals.filter(tier="privacy", decision=ReviewDecision.APPROVE).exists()
    )
    return {"at": at, "privacy_approved": privacy}


def portal_activation(change: ChangeRequest, *, at: datetime) -> Activation:
    """May the portal apply ``change`` at ``at``? Every approval must still hold, and the policies
    in force must allow the activation to the last approver (with their own attributes: region,
    training, on-call state), or to someone under an on-call override in force."""
    basis = approval_basis(change, at=at)
    if basis is None:
        return Activation(False, at, (), ("its approvals are no longer complete",))
    ids, last = tuple(a.pk for a in basis), basis[-1]
    workflow = change.workflow
    outcome = policy_outcome(
        last.reviewer,
        ACTIVATE,
        workflow,
        resource_for(workflow),
        workflow.workspace.organization_id,
        activation_context(change, at),
    )
    if outcome is None or not outcome.forbidden:
        return Activation(
            True, at, ids, ("the approvals are complete and the policies allow it",), evaluated_for=last
        )
    for override in _overrides(workflow, at, change):
        decision = _ask(override.user, workflow, activation_context(change, at))
        if decision.allowed:
            return Activation(
                True,
                at,
                ids,
                (f"an on-call override of {override.user.email} is in force", *decision.reasons),
                override_id=override.pk,
                override_holder=override.user.email,
                evaluated_for=last,
            )
    return Activation(False, at, ids, outcome.messages, outcome.policies, evaluated_for=last)


def _overrides(workflow: Workflow, at: datetime, change: ChangeRequest, *, starting_after=False):
    """On-call overrides in the workflow's workspace, in force at ``at`` (or starting after it),
    of anyone but the change's author: whoever wrote a change never puts it live."""
    overrides = OnCallOverride.objects.filter(
        workspace_id=workflow.workspace_id, ended_at__isnull=True, ends_at__gt=at
    ).exclude(user_id=change.author_id)
    overrides = overrides.filter(**({"starts_at__gt": at} if starting_after else {"starts_at__lte": at}))
    return overrides.select_related("user").order_by("starts_at", "id")


def next_business_window(workspace, at: datetime) -> datetime | None:
    """When the workspace's business hours next begin after ``at`` (``at`` itself when within them)."""
    zone = ZoneInfo(workspace.time_zone)
    local = at.astimezone(zone)
    start, end = workspace.business_hours_start, workspace.business_hours_end
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if str(day.isoweekday()) not in workspace.business_days:
            continue
        opens = datetime.combine(day, start, tzinfo=zone)
        if offset == 0 and local.time() >= start:
            if local.time() < end:
                return at
            continue
        return opens
    return None


def describe_moment(moment: datetime, time_zone: str) -> str:
    """A moment as the workspace's people read it: "Mon 2026-06-22 09:00 Europe/Berlin"."""
    return f"{moment.astimezone(ZoneInfo(time_zone)):%a %Y-%m-%d %H:%M} {time_zone}"


def _last_approver_note(change: ChangeRequest, basis: list[Approval], at: datetime) -> str:
    """Say so when the last approver holds no role that activates the workflow (the reason the
    change did not apply at their approval, whatever the time)."""
    if not basis:
        return ""
    last = basis[-1]
    decision = _ask(last.reviewer, change.workflow, activation_context(change, at))
    if decision.allowed or decision.policies:
        return ""
    return f"The last approver, {last.reviewer.email}, may not activate workflows in this workspace. "


def waiting_reason(change: ChangeRequest, *, at: datetime) -> tuple[str, datetime | None]:
    """Why an approved change waits at ``at``, and until when (None: no time is known)."""
    workflow = change.workflow
    now = portal_activation(change, at=at)
    basis = approval_basis(change, at=at) or []
    if not basis:
        _, lapsed = approval_standing(change, at=at)
        details = "".join(f" {lapse.describe()}" for lapse in lapsed)
        return (
            f"Its approvals are no longer complete; it cannot be applied.{details}"
            + (" It applies once they hold again." if lapsed else ""),
            None,
        )
    note = _last_approver_note(change, basis, at)
    if now.allowed:
        return note + "It applies automatically within a minute, or an officer or owner can apply it now.", at
    time_zone = workflow.workspace.time_zone
    window = next_business_window(workflow.workspace, at)
    later = portal_activation(change, at=window) if window is not None and window > at else None
    on_call = _next_override_start(change, at)
    if later is not None and later.allowed:
        until = min(window, on_call) if on_call else window
        scheduled = (
            f" An on-call override starting {describe_moment(on_call, time_zone)} lets it apply then."
            if on_call and on_call < window
            else ""
        )
        return (
            note + f"Waits for business hours: the next window opens {describe_moment(window, time_zone)}."
            f"{scheduled} It applies automatically then, or earlier when an officer or owner takes an "
            "on-call override (they can then also apply it themselves).",
            until,
        )
    refusal = " ".join((later or now).reasons)
    when = (
        f" It applies automatically at {describe_moment(on_call, time_zone)}, under an on-call override."
        if on_call
        else ""
    )
    return (
        note + f"The policies do not let it apply: {refusal}{when} An officer or owner can apply it "
        "once the policies allow it.",
        on_call,
    )


def _next_override_start(change: ChangeRequest, at: datetime) -> datetime | None:
    """The start of the next scheduled on-call override under which the change could apply."""
    for override in _overrides(change.workflow, at, change, starting_after=True)[:5]:
        context = activation_context(change, override.starts_at)
        if _ask(override.user, change.workflow, context).allowed:
            return override.starts_at
    return None
