"""Notifications about workflow changes, sent after commit; the job that applies approved changes."""

from __future__ import annotations

from django.core.mail import send_mail

from governance.core.context import ActorContext, bind_context
from governance.core.jobs import shared_task
from workflows.changes import services
from workflows.changes.models import ChangeRequest, ChangeState
from workflows.changes.selectors import reviewers_of


@shared_task(name="workflows.notify_change", ignore_result=True)
def notify_change(kind: str, change_id: int, approval_id: int | None = None, state: str | None = None) -> int:
    """Reviewers hear about a submission; the author hears about each decision, once, as it was made
    (``approval_id`` and the ``state`` it left), even when the mail goes out after later ones."""
    change = ChangeRequest.objects.select_related("workflow", "author__manager").get(pk=change_id)
    if kind == "submitted":
        recipients = reviewers_of(change)
        subject = f"Review requested: {change.workflow} — {change.summary}"
        body = (
            f"{change.author} submitted version {change.version.number} of {change.workflow}.\n"
            f"Approvals needed: {', '.join(t['code'] for t in change.required_tiers)}."
        )
    else:
        recipients = [change.author.email]
        decisions = change.approvals.select_related("reviewer")
        decision = (
            decisions.filter(pk=approval_id).first()
            if approval_id
            else decisions.order_by("-decided_at").first()
        )
        state = state if state in ChangeState.values else change.state
        subject = f"Your change to {change.workflow} is {ChangeState(state).label.lower()}"
        body = (
            f"{decision.reviewer} decided the {decision.tier} approval: {decision.comment}"
            if decision
            else subject
        )
        if state == ChangeState.APPROVED and change.deferral_reason:
            body += f"\n\nNot applied yet: {change.deferral_reason}"
    if recipients:
        send_mail(subject, body, None, recipients)
    return len(recipients)


@shared_task(name="workflows.changes_apply_due", ignore_result=True)
def changes_apply_due() -> int:
    """The beat job: apply the approved changes the policies now allow, as the portal."""
    with bind_context(ActorContext(user_agent="celery:workflows.changes_apply_due")):
        return len(services.changes_apply_due())
