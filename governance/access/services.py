"""Access changes with their ledger events: per-object grants (django-guardian), attribute
policy changes (proposed by one compliance officer, approved by another) and on-call overrides."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from audit.services import audit_event_record, audited_transaction, diff_fields
from governance.access.cedar import validate_policy_text
from governance.access.decision import forget, require
from governance.access.events import AccessEvent
from governance.access.models import ChangeStatus, OnCallOverride, Policy, PolicyChange
from governance.access.selectors import policy_text_diff
from governance.core.resources import resource_for


def _codename(obj: models.Model, verb: str) -> str:
    resource = resource_for(obj)
    if resource is None or resource.action_for(verb) is None:
        raise ValidationError({"verb": f"{verb!r} cannot be granted on {type(obj).__name__}."})
    return f"{verb}_{obj._meta.model_name}"


def object_grant_assign(*, actor, user, obj: models.Model, verb: str) -> None:
    """Let ``user`` perform ``verb`` on ``obj`` alone (e.g. view one workspace)."""
    codename = _codename(obj, verb)
    resource = resource_for(obj)
    with audited_transaction():
        require(actor, "grant.manage", obj, fresh=True)
        if user.organization_id != resource.organization_id_of(obj):
            raise ValidationError({"user": "This user belongs to another organisation."})
        assign_perm(codename, user, obj)
        audit_event_record(
            action=AccessEvent.GRANT_ASSIGNED,
            actor=actor,
            target=obj,
            organization_id=resource.organization_id_of(obj),
            workspace_id=resource.workspace_id_of(obj),
            data={"user": user.email, "permission": codename},
        )
    forget(user)


def object_grant_revoke(*, actor, user, obj: models.Model, verb: str) -> None:
    """Withdraw a grant made by ``object_grant_assign``."""
    codename = _codename(obj, verb)
    resource = resource_for(obj)
    with audited_transaction():
        require(actor, "grant.manage", obj, fresh=True)
        remove_perm(codename, user, obj)
        audit_event_record(
            action=AccessEvent.GRANT_REVOKED,
            actor=actor,
            target=obj,
            organization_id=resource.organization_id_of(obj),
            workspace_id=resource.workspace_id_of(obj),
            data={"user": user.email, "permission": codename},
        )
    forget(user)


# --- Attribute policies: every change proposed by one officer, applied when another approves ----


def _policy_state(
    *, text: str, enabled: bool, disabled_workspaces, description: str, organization_id: int | None = None
) -> dict:
    """A policy's state as one organisation sees it (only its own workspaces' switches)."""
    return {
        "text": text,
        "enabled": enabled,
        "disabled_workspaces": sorted(
            w.slug
            for w in disabled_workspaces
            if organization_id is None or w.organization_id == organization_id
        ),
        "description": description,
    }


def _validation_error(text: str) -> ValidationError | None:
    problems = validate_policy_text(text)
    return ValidationError({"text": [str(problem) for problem in problems]}) if problems else None


SHIPPED_POLICY_FIXED = (
    "Shipped with the portal and the same for every organisation, so its text, description and "
    "on/off switch cannot be changed by one organisation. To stop it applying, list the workspaces "
    "where it is switched off; to enforce something else, propose a policy of your own (leave "
    "Policy empty) and switch this one off where yours replaces it."
)


def policy_change_errors(
    *,
    organization,
    policy: Policy | None,
    name: str,
    text: str,
    enabled: bool,
    description: str,
    disabled_workspaces=(),
) -> dict[str, str]:
    """Field errors of a proposal the Cedar validator cannot see (empty when acceptable): the
    rules that the proposal service enforces, for a form to show beside what was typed."""
    errors: dict[str, str] = {}
    if policy is None and Policy.objects.filter(organization=organization, name=name).exists():
        errors["name"] = "A policy with this name exists; propose a change to it instead."
    if policy is not None and policy.organization_id not in (None, organization.pk):
        errors["policy"] = "This policy belongs to another organisation."
    if policy is not None and policy.organization_id is None:
        if text != policy.text:
            errors["text"] = SHIPPED_POLICY_FIXED
        if description not in ("", policy.description):
            errors["description"] = SHIPPED_POLICY_FIXED
        if not enabled:
            errors["enabled"] = SHIPPED_POLICY_FIXED
    if any(workspace.organization_id != organization.pk for workspace in disabled_workspaces):
        errors["disabled_workspaces"] = "Only workspaces of your organisation can be listed."
    return errors


def policy_change_propose(
    *,
    actor,
    organization,
    name: str,
    text: str,
    reason: str,
    policy: Policy | None = None,
    enabled: bool = True,
    disabled_workspaces=(),
    description: str = "",
) -> PolicyChange:
    """Propose a new policy or a new state of one; nothing takes effect until another officer approves."""
    with audited_transaction():
        require(actor, "policy.manage", organization, fresh=True)
        error = _validation_error(text)
        if error is not None:
            raise error
        errors = policy_change_errors(
            organization=organization,
            policy=policy,
            name=name,
            text=text,
            enabled=enabled,
            description=description,
            disabled_workspaces=disabled_workspaces,
        )
        if not reason.strip():
            errors["reason"] = "Say why this change is needed."
        if errors:
            raise ValidationError(errors)
        change = PolicyChange.objects.create(
            policy=policy,
            organization=organization,
            name=policy.name if policy else name,
            description=description,
            text=text,
            enabled=enabled,
            reason=reason,
            proposed_by=actor,
        )
        change.disabled_workspaces.set(disabled_workspaces)
        before = policy.text if policy else ""
        audit_event_record(
            action=AccessEvent.POLICY_CHANGE_PROPOSED,
            actor=actor,
            target=change,
            organization_id=organization.pk,
            data={
                "policy": change.name,
                "reason": reason,
                "text_diff": policy_text_diff(before, text),
                "after": _policy_state(
                    text=text,
                    enabled=enabled,
                    disabled_workspaces=disabled_workspaces,
                    description=description,
                ),
            },
        )
    transaction.on_commit(lambda: _notify_officers(change.pk))
    return change


def _decided(change: PolicyChange, actor) -> PolicyChange:
    change = PolicyChange.objects.select_for_update().get(pk=change.pk)
    if change.status != ChangeStatus.PENDING:
        raise ValidationError({"status": f"This change was already {change.get_status_display().lower()}."})
    if change.proposed_by_id == actor.pk:
        raise ValidationError(
            {"decided_by": "You proposed this change; another compliance officer must decide it."}
        )
    return change


def policy_change_approve(*, actor, change: PolicyChange, comment: str) -> Policy:
    """Approve a proposal (not your own) and put it in force, with the diff in the ledger."""
    with audited_transaction():
        require(actor, "policy.manage", change.organization, fresh=True)
        change = _decided(change, actor)
        if not comment.strip():
            raise ValidationError({"comment": "Say why you approve."})
        error = _validation_error(change.text)  # the schema may have moved on since the proposal
        if error is not None:
            raise error
        policy = change.policy
        if policy is None:
            policy = Policy(organization=change.organization, name=change.name)
            before = {}
        else:
            policy = Policy.objects.select_for_update().get(pk=policy.pk)
            before = _policy_state(
                text=policy.text,
                enabled=policy.enabled,
                disabled_workspaces=policy.disabled_workspaces.all(),
                description=policy.description,
                organization_id=change.organization_id,
            )
            policy.version += 1
        if policy.organization_id is None:
            # A shipped policy is shared: this organisation changes only its own workspaces' switches.
            if change.text != policy.text or not change.enabled:
                raise ValidationError({"text": "Shipped policies cannot be edited by an organisation."})
            others = policy.disabled_workspaces.exclude(organization_id=change.organization_id)
            policy.updated_at = timezone.now()
            policy.save(update_fields=["version", "updated_at"])
            policy.disabled_workspaces.set([*others, *change.disabled_workspaces.all()])
        else:
            policy.text, policy.enabled, policy.description = change.text, change.enabled, change.description
            policy.updated_at = timezone.now()
            policy.save()
            policy.disabled_workspaces.set(change.disabled_workspaces.all())
        change.status, change.decided_by, change.decided_at = ChangeStatus.APPROVED, actor, timezone.now()
        change.decision_comment = comment
        change.save(update_fields=["status", "decided_by", "decided_at", "decision_comment", "policy"])
        if change.policy_id is None:
            change.policy = policy
            change.save(update_fields=["policy"])
        after = _policy_state(
            text=policy.text,
            enabled=policy.enabled,
            disabled_workspaces=policy.disabled_workspaces.all(),
            description=policy.description,
            organization_id=change.organization_id,
        )
        audit_event_record(
            action=AccessEvent.POLICY_CHANGE_APPROVED,
            actor=actor,
            target=policy,
            covers=[change],  # the proposal, decided with it
            organization_id=change.organization_id,
            data={
                "policy": policy.name,
                "version": policy.version,
                "proposed_by": change.proposed_by.email,
                "comment": comment,
                "text_diff": policy_text_diff(before.get("text", ""), policy.text),
                "diff": diff_fields(before, after),
            },
        )
    return policy


def policy_change_reject(*, actor, change: PolicyChange, comment: str) -> PolicyChange:
    """Reject a proposal (not your own) with a reason."""
    with audited_transaction():
        require(actor, "policy.manage", change.organization, fresh=True)
        change = _decided(change, actor)
        if not comment.strip():
            raise ValidationError({"comment": "Say why you reject."})
        change.status, change.decided_by, change.decided_at = ChangeStatus.REJECTED, actor, timezone.now()
        change.decision_comment = comment
        change.save(update_fields=["status", "decided_by", "decided_at", "decision_comment"])
        audit_event_record(
            action=AccessEvent.POLICY_CHANGE_REJECTED,
            actor=actor,
            target=change,
            organization_id=change.organization_id,
            data={"policy": change.name, "comment": comment},
        )
    return change


def _notify_officers(change_id: int) -> None:
    from governance.access.tasks import notify_policy_change  # at call time: it loads Celery

    notify_policy_change.delay(change_id)


# --- On-call overrides: break glass, time-limited, reasoned, notified, recorded -----------------

MAX_OVERRIDE = timedelta(hours=12)


def oncall_override_activate(*, actor, workspace, reason: str, duration: timedelta) -> OnCallOverride:
    """Take an on-call override in ``workspace`` for ``duration`` (at most 12 hours) with a reason."""
    with audited_transaction():
        require(actor, "oncall.activate", workspace, fresh=True)
        if len(reason.strip()) < 10:
            raise ValidationError({"reason": "Describe the incident or task (at least 10 characters)."})
        if not timedelta(minutes=5) <= duration <= MAX_OVERRIDE:
            raise ValidationError({"duration": "An override lasts between 5 minutes and 12 hours."})
        now = timezone.now()
        override = OnCallOverride.objects.create(
            user=actor, workspace=workspace, reason=reason.strip(), starts_at=now, ends_at=now + duration
        )
        audit_event_record(
            action=AccessEvent.ONCALL_ACTIVATED,
            actor=actor,
            target=override,
            organization_id=workspace.organization_id,
            workspace_id=workspace.pk,
            data={"reason": override.reason, "ends_at": override.ends_at},
        )
    transaction.on_commit(lambda: _notify_override(override.pk))
    return override


def oncall_override_end(*, actor, override: OnCallOverride) -> OnCallOverride:
    """End an override early (its holder, or whoever governs policies in that organisation)."""
    with audited_transaction():
        override = OnCallOverride.objects.select_for_update().get(pk=override.pk)
        if override.user_id != actor.pk:
            require(actor, "policy.manage", override.workspace, fresh=True)
        if override.ended_at is not None or override.ends_at <= timezone.now():
            raise ValidationError({"ended_at": "This override has already ended."})
        override.ended_at, override.ended_by = timezone.now(), actor
        override.save(update_fields=["ended_at", "ended_by"])
        audit_event_record(
            action=AccessEvent.ONCALL_ENDED,
            actor=actor,
            target=override,
            organization_id=override.workspace.organization_id,
            workspace_id=override.workspace_id,
            data={"holder": override.user.email},
        )
    return override


def _notify_override(override_id: int) -> None:
    from governance.access.tasks import notify_oncall_override

    notify_oncall_override.delay(override_id)
