"""Per-object grants (django-guardian), assigned and revoked with their ledger events."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from guardian.shortcuts import assign_perm, remove_perm

from audit.services import audit_event_record, audited_transaction
from governance.access.decision import forget, require
from governance.access.resources import resource_for


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
            action="grant.assigned",
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
            action="grant.revoked",
            actor=actor,
            target=obj,
            organization_id=resource.organization_id_of(obj),
            workspace_id=resource.workspace_id_of(obj),
            data={"user": user.email, "permission": codename},
        )
    forget(user)
