"""Reads of workflows and their changes: what an actor may see, review and decide, and who reviews."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from governance.access.decision import decide
from governance.access.queries import restrict
from governance.core.choices import ReviewDecision
from governance.tenancy.models import Membership
from governance.tenancy.roles import COMPLIANCE_OFFICER
from workflows.changes.checks import definition_refusal
from workflows.changes.models import Approval, ChangeRequest, ChangeState, Workflow
from workflows.changes.transitions import OPEN
from workflows.changes.waiting import approval_basis, describe_moment, manager_refusal, waiting_reason

REVIEW_SLA = timedelta(days=2)


def workflows_visible_to(actor) -> QuerySet[Workflow]:
    return restrict(
        Workflow.objects.select_related("workspace", "active_version", "owner"), actor, "workflow.view"
    )


def changes_visible_to(actor) -> QuerySet[ChangeRequest]:
    """Changes of workflows the actor may see, and those whose author reports to the actor (the
    manager approval may fall to someone without a role in that workspace)."""
    visible = restrict(ChangeRequest.objects.all(), actor, "workflow.view").values("pk")
    return ChangeRequest.objects.filter(
        Q(pk__in=visible)
        | Q(author__manager=actor, workflow__workspace__organization_id=actor.organization_id)
    ).select_related("workflow__workspace", "version", "author")


def inbox_for(actor) -> QuerySet[ChangeRequest]:
    """Changes waiting for a review the actor may give, oldest first (not their own, not yet decided by them)."""
    # Those whose role decides changes (seeing a change is not enough: an auditor reads them all).
    by_role = restrict(ChangeRequest.objects.all(), actor, "workflow.approve").values("pk")
    # A manager reviews only changes that need a manager's approval (the tiers are JSON text).
    as_manager = Q(author__manager=actor, required_tiers__icontains='"manager"')
    reviewable = ChangeRequest.objects.filter(
        Q(pk__in=by_role) | as_manager,
        workflow__workspace__organization_id=actor.organization_id,
        state__in=(ChangeState.SUBMITTED, ChangeState.IN_REVIEW),
    ).select_related("workflow__workspace", "version", "author")
    mine = Approval.objects.filter(change=OuterRef("pk"), reviewer=actor)
    return reviewable.exclude(author=actor).filter(~Exists(mine)).order_by("submitted_at", "id")


def approvable_tiers(actor, change: ChangeRequest) -> list[str]:
    """The tiers of ``change`` that ``actor`` may decide now (empty for the author)."""
    if change.author_id == actor.pk or change.state not in (ChangeState.SUBMITTED, ChangeState.IN_REVIEW):
        return []
    approvals = list(change.approvals.all())
    if any(a.reviewer_id == actor.pk for a in approvals):
        return []  # one person decides one tier: the approvals are AND-ed across people
    decided = {a.tier for a in approvals if a.decision == ReviewDecision.APPROVE}
    tiers = []
    for tier in change.required_tiers:
        if tier["code"] in decided:
            continue
        if tier["approver"] == "manager":
            if change.author.manager_id == actor.pk and not manager_refusal(actor, change.workflow)[1]:
                tiers.append(tier["code"])
        elif decide(actor, "workflow.approve", change.workflow).allowed:
            tiers.append(tier["code"])
    return tiers


def reviewers_of(change: ChangeRequest) -> list[str]:
    """E-mail addresses of those who may review the change (officers of its workspace, the manager)."""
    members = Membership.objects.filter(workspace_id=change.workflow.workspace_id)
    emails = set(members.holding(COMPLIANCE_OFFICER).emails())
    if any(t["approver"] == "manager" for t in change.required_tiers) and change.author.manager_id:
        emails.add(change.author.manager.email)
    emails.discard(change.author.email)
    return sorted(emails)


def change_waiting(change: ChangeRequest) -> dict[str, str] | None:
    """Why an approved change is not applied yet and until when, as the pages show it (None when it
    is not waiting). The reason stored by the last deferral, else (or when an approval has lapsed
    since) worked out now."""
    if change.state != ChangeState.APPROVED:
        return None
    reason, until = change.deferral_reason, change.deferred_until
    # An approval that lapsed since the last deferral is told at once, not at the job's next run.
    if not reason or approval_basis(change) is None:
        reason, until = waiting_reason(change, at=timezone.now())
    time_zone = change.workflow.workspace.time_zone
    return {"reason": reason, "until": describe_moment(until, time_zone) if until else ""}


OPEN_TO_CHECKS = (ChangeState.DRAFT, ChangeState.SUBMITTED, ChangeState.IN_REVIEW, ChangeState.APPROVED)


def change_refusal(change: ChangeRequest) -> str:
    """Why the registered checks (the AI register, the bias policy) would refuse to approve or
    apply ``change`` now, for its review page ("" when none does, or the change is decided)."""
    if change.state not in OPEN_TO_CHECKS:
        return ""
    return definition_refusal(change.workflow, change.version.definition)


def may_apply_now(actor, change: ChangeRequest) -> bool:
    """Whether to offer ``actor`` *Apply now*: an approved change, not their own, in a workflow their
    role lets them activate (the policies are asked when they press it, and say why if not)."""
    if change.state != ChangeState.APPROVED or change.author_id == actor.pk:
        return False
    decision = decide(actor, "workflow.activate", change.workflow)
    return decision.allowed or bool(decision.policies)


def changes_a_save_supersedes(workflow: Workflow) -> list[ChangeRequest]:
    """The changes of ``workflow`` still in play that saving a new version would supersede (each
    submitted, in review or approved one loses its place in the reviewers' queue, with its
    reviews); drafts included, so that the builder is told of those too."""
    return list(
        ChangeRequest.objects.filter(workflow=workflow, state__in=OPEN)
        .select_related("version", "author")
        .prefetch_related("approvals")
        .order_by("created_at")
    )
