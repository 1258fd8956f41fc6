"""Attribute policies applied to one decision: which are in force where, and what they are told.

The decision point calls ``policy_outcome`` after roles and grants allowed an action on an
object that the policies speak about (a resource registered with a ``policy_entity``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from governance.access import cedar
from governance.access.models import OnCallOverride, Policy
from governance.context import current_context

_OPTIONAL_CONTEXT = ("privacy_approved", "manager_approved", "authentication", "mfa_age_seconds")


def policies_in_force(organization_id: int | None, workspace_id: int | None) -> cedar.CompiledPolicies:
    """The enabled policies (shipped and the organisation's own) not switched off in this workspace."""
    context = current_context()
    key = ("policies", organization_id, workspace_id)
    if context is not None and key in context.memo:
        return context.memo[key]
    policies = Policy.objects.filter(
        Q(organization__isnull=True) | Q(organization_id=organization_id), enabled=True
    )
    if workspace_id is not None:
        policies = policies.exclude(disabled_workspaces=workspace_id)
    texts = tuple(policies.order_by("name", "id").values_list("name", "text"))
    compiled = cedar.compile_policies(texts)
    if context is not None:
        context.memo[key] = compiled
    return compiled


def oncall_active(user, workspace_id: int, at: datetime) -> bool:
    return OnCallOverride.objects.filter(
        user_id=user.pk, workspace_id=workspace_id, ended_at__isnull=True, starts_at__lte=at, ends_at__gt=at
    ).exists()


def principal_entity(user, workspace_id: int, at: datetime) -> dict:
    attributes: dict[str, Any] = {
        "has_manager": user.manager_id is not None,
        "training_current": bool(
            user.security_training_expires_on and user.security_training_expires_on >= at.date()
        ),
        "oncall_active": oncall_active(user, workspace_id, at),
    }
    if user.region:
        attributes["region"] = user.region
    if user.department:
        attributes["department"] = user.department
    return {"uid": cedar.uid("User", user.pk), "attrs": attributes, "parents": []}


def policy_outcome(
    actor, action: str, obj, resource, organization_id: int | None, extra: dict[str, Any] | None
) -> cedar.PolicyOutcome | None:
    """What the attribute policies say about ``actor`` doing ``action`` on ``obj`` (None: they don't apply)."""
    if resource.policy_entity is None:
        return None
    kind, attributes, workspace = resource.policy_entity(obj)
    compiled = policies_in_force(organization_id, workspace.pk)
    return evaluate_request(
        actor,
        action,
        kind=kind,
        resource_id=obj.pk,
        attributes=attributes,
        workspace=workspace,
        extra=extra or {},
        compiled=compiled,
    )


def evaluate_request(
    actor,
    action: str,
    *,
    kind: str,
    resource_id,
    attributes: dict,
    workspace,
    extra: dict[str, Any],
    compiled: cedar.CompiledPolicies,
) -> cedar.PolicyOutcome:
    """Evaluate ``compiled`` for one request about a resource of type ``kind`` in ``workspace``."""
    at = extra.get("at") or timezone.now()
    context: dict[str, Any] = cedar.business_context(
        time_zone=workspace.time_zone, start=workspace.business_hours_start, end=workspace.business_hours_end,
        days=workspace.business_days, at=at,
    )  # fmt: skip
    request = current_context()
    if request is not None and request.ip:
        context["source_ip"] = request.ip
    context.update({name: extra[name] for name in _OPTIONAL_CONTEXT if name in extra})
    principal = principal_entity(actor, workspace.pk, at)
    resource_uid = cedar.uid(kind, resource_id)
    workspace_uid = cedar.uid("Workspace", workspace.pk)
    if kind == "Workspace":
        entities = [principal, {"uid": resource_uid, "attrs": attributes, "parents": []}]
    else:
        attributes = {**attributes, "workspace": {"__entity": workspace_uid}}
        entities = [principal, {"uid": resource_uid, "attrs": attributes, "parents": []},
                    {"uid": workspace_uid, "attrs": {"data_region": workspace.data_region,
                                                     "time_zone": workspace.time_zone}, "parents": []}]  # fmt: skip
    values = {f"principal_{k}": v for k, v in principal["attrs"].items()}
    values.update({f"resource_{k}": v for k, v in attributes.items() if not isinstance(v, dict)})
    return cedar.evaluate(
        compiled,
        principal=principal["uid"],
        action=action,
        resource=resource_uid,
        entities=entities,
        context=context,
        message_values=values,
    )


def try_policies(
    *,
    subject,
    action: str,
    kind: str,
    attributes: dict,
    workspace,
    extra: dict[str, Any],
    draft: tuple[str, str] | None = None,
) -> cedar.PolicyOutcome:
    """The "try it" form: the policies in force in ``workspace`` (plus a draft, if given) for a
    hypothetical resource. Roles are not consulted: this shows what the policies alone say."""
    in_force = Policy.objects.filter(Q(organization__isnull=True) | Q(organization_id=workspace.organization_id),
                                     enabled=True).exclude(disabled_workspaces=workspace.pk)  # fmt: skip
    texts = [(name, text) for name, text in in_force.order_by("name", "id").values_list("name", "text")
             if draft is None or name != draft[0]]  # fmt: skip
    if draft is not None:
        texts.append(draft)
    return evaluate_request(
        subject,
        action,
        kind=kind,
        resource_id="hypothetical",
        attributes=attributes,
        workspace=workspace,
        extra=extra,
        compiled=cedar.compile_policies(tuple(texts)),
    )
