"""Why an approved change is not applied yet, and when the portal itself may apply it.

A fully approved change is applied at once when its last approver may activate the workflow.
When that approver may not (a manager without a role in the workspace), or the attribute
policies defer it (a production change approved outside business hours), the portal applies it
later, on the approvals' authority: ``portal_activation`` asks the decision point's policies,
at that moment, with the portal as the principal. These are reads; the writes are in
``workflows.changes.services``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from governance.access.decision import decide
from governance.access.models import OnCallOverride
from governance.access.policies import policy_outcome
from governance.core.choices import ReviewDecision
from governance.core.context import current_context
from governance.core.resources import resource_for
from workflows.changes.models import Approval, ChangeRequest, Workflow

ACTIVATE = "workflow.activate"


def _ask(user, workflow: Workflow, context: dict[str, Any]):
    """The decision point's answer about someone other than the requester (an approver, a person
    on call): a question the portal asks, not a refusal of their request, so it is kept out of
    the request's denials (which the ledger records when the request is refused)."""
    request = current_context()
    seen = len(request.denials) if request is not None else 0
    decision = decide(user, ACTIVATE, workflow, context, fresh=True)
    if request is not None:
        del request.denials[seen:]
    return decision


@dataclass(frozen=True)
class PortalPrincipal:
    """The portal itself, as the attribute policies see it when it applies an approved change.

    It is no person: it has no manager and no department, and needs no training. It works in the
    data region of the workflow it acts on (it moves no data, and the approvers it acts for were
    held to the region rule when they approved). It holds no on-call override of its own: outside
    business hours it applies a change only under the override of someone whom the decision
    point allows to activate the workflow at that moment.
    """

    region: str
    pk: int = 0
    manager_id: int | None = None
    department: str = ""
    security_training_expires_on: date = date.max
    label: str = "the portal"


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
            },
        }


def approval_basis(change: ChangeRequest) -> list[Approval] | None:
    """The approvals that together cover every required tier, or None when they do not (any longer)."""
    approvals = list(change.approvals.filter(decision=ReviewDecision.APPROVE).order_by("decided_at", "id"))
    if change.approvals.filter(decision=ReviewDecision.REJECT).exists():
        return None
    if not {a.tier for a in approvals} >= {t["code"] for t in change.required_tiers}:
        return None
    return approvals


def activation_context(change: ChangeRequest, at: datetime) -> dict[str, Any]:
    """The request attributes of an activation: the moment, and whether privacy approved."""
    privacy = (
        not change.workflow.handles_pii
        or change.approvals.filter(tier="privacy", decision=ReviewDecision.APPROVE).exists()
    )
    return {"at": at, "privacy_approved": privacy}


def portal_activation(change: ChangeRequest, *, at: datetime) -> Activation:
    """May the portal apply ``change`` at ``at``? Its approvals must be complete and the policies in
    force must allow the activation, for the portal itself or under an on-call override in force."""
    basis = approval_basis(change)
    if basis is None:
        return Activation(False, at, (), ("its approvals are no longer complete",))
    ids = tuple(a.pk for a in basis)
    workflow = change.workflow
    outcome = policy_outcome(
        PortalPrincipal(region=workflow.data_region),
        ACTIVATE,
        workflow,
        resource_for(workflow),
        workflow.workspace.organization_id,
        activation_context(change, at),
    )
    if outcome is None or not outcome.forbidden:
        return Activation(True, at, ids, ("the approvals are complete and the policies allow it",))
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
            )
    return Activation(False, at, ids, outcome.messages, outcome.policies)


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
    basis = approval_basis(change) or []
    note = _last_approver_note(change, basis, at)
    if not basis:
        return "Its approvals are no longer complete; it cannot be applied.", None
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
