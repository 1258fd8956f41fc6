"""Attribute policies applied to one decision: which are in force where, and what they are told.

The decision point calls ``policy_outcome`` after roles and grants allowed an action on an
object that the policies speak about (a resource registered with a ``policy_entity``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from governance.access import cedar
from governance.access.models import OnCallOverride, Policy
from governance.access.selectors import policies_enabled_for
from governance.core.context import current_context

_OPTIONAL_CONTEXT = ("privacy_approved", "manager_approved", "authentication", "mfa_age_seconds")


def _memo(key, compute):
    """Per-request memo in the bound context; computed afresh when there is none."""
    context = current_context()
    if context is None:
        return compute()
    if key not in context.memo:
        context.memo[key] = compute()
    return context.memo[key]


def _organization_policies(organization_id: int | None) -> list[tuple[str, str, frozenset[int]]]:
    """(name, text, workspaces where switched off) of the enabled policies, in one query."""
    rows = (
        policies_enabled_for(organization_id)
        .order_by("name", "id")
        .values_list("id", "name", "text", "disabled_workspaces")
    )
    policies: dict[int, tuple[str, str, set[int]]] = {}
    for policy_id, name, text, disabled in rows:
        entry = policies.setdefault(policy_id, (name, text, set()))
        if disabled is not None:
            entry[2].add(disabled)
    return [(name, text, frozenset(disabled)) for name, text, disabled in policies.values()]


def policies_in_force(organization_id: int | None, workspace_id: int | None) -> cedar.CompiledPolicies:
    """The enabled policies (shipped and the organisation's own) not switched off in this workspace."""
    policies = _memo(("policies", organization_id), lambda: _organization_policies(organization_id))
    texts = tuple((name, text) for name, text, disabled in policies if workspace_id not in disabled)
    return cedar.compile_policies(texts)


_RECENT = timedelta(hours=24)


def oncall_active(user, workspace_id: int, at: datetime) -> bool:
    """Whether ``user`` holds an active on-call override in the workspace at ``at``.

    The user's recent overrides are read once per request; a question about the more distant
    past (the try-it form, tests) asks the table directly.
    """
    cutoff = timezone.now() - _RECENT
    if at < cutoff:
        return OnCallOverride.objects.filter(
            user_id=user.pk,
            workspace_id=workspace_id,
            ended_at__isnull=True,
            starts_at__lte=at,
            ends_at__gt=at,
        ).exists()
    windows = _memo(
        ("oncall", user.pk, cutoff.date()),
        lambda: list(
            OnCallOverride.objects.filter(
                user_id=user.pk, ended_at__isnull=True, ends_at__gt=cutoff
            ).values_list("workspace_id", "starts_at", "ends_at")
        ),
    )
    return any(ws == workspace_id and start <= at < end for ws, start, end in windows)


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


def _request_context(workspace, extra: dict[str, Any]) -> tuple[datetime, dict[str, Any]]:
    at = extra.get("at") or timezone.now()
    context: dict[str, Any] = cedar.business_context(
        time_zone=workspace.time_zone,
        start=workspace.business_hours_start,
        end=workspace.business_hours_end,
        days=workspace.business_days,
        at=at,
    )
    request = current_context()
    if request is not None and request.ip:
        context["source_ip"] = request.ip
    context.update({name: extra[name] for name in _OPTIONAL_CONTEXT if name in extra})
    return at, context


def _resource_entity(kind: str, resource_id, attributes: dict, workspace) -> tuple[dict, dict]:
    """The resource's Cedar entity, and the values its messages may quote."""
    if kind != "Workspace":
        attributes = {**attributes, "workspace": {"__entity": cedar.uid("Workspace", workspace.pk)}}
    entity = {"uid": cedar.uid(kind, resource_id), "attrs": attributes, "parents": []}
    return entity, {f"resource_{k}": v for k, v in attributes.items() if not isinstance(v, dict)}


def _workspace_entity(workspace) -> dict:
    return {
        "uid": cedar.uid("Workspace", workspace.pk),
        "attrs": {"data_region": workspace.data_region, "time_zone": workspace.time_zone},
        "parents": [],
    }


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
    at, context = _request_context(workspace, extra)
    principal = principal_entity(actor, workspace.pk, at)
    resource, resource_values = _resource_entity(kind, resource_id, attributes, workspace)
    entities = [principal, resource]
    if kind != "Workspace":
        entities.append(_workspace_entity(workspace))
    values = {f"principal_{k}": v for k, v in principal["attrs"].items()} | resource_values
    return cedar.evaluate(
        compiled,
        principal=principal["uid"],
        action=action,
        resource=resource["uid"],
        entities=entities,
        context=context,
        message_values=values,
    )


def policy_outcomes(
    actor, action: str, objects: list, resource, organization_id: int | None, extra: dict[str, Any] | None
) -> dict[Any, cedar.PolicyOutcome]:
    """``policy_outcome`` for many objects of one model: one Cedar batch per workspace (their
    business hours and the actor's on-call state differ by workspace). Keyed by primary key."""
    if resource.policy_entity is None:
        return {}
    extra = extra or {}
    groups: dict[int, tuple[Any, list]] = {}
    for obj in objects:
        kind, attributes, workspace = resource.policy_entity(obj)
        groups.setdefault(workspace.pk, (workspace, []))[1].append((obj.pk, kind, attributes))
    outcomes = {}
    for workspace, members in groups.values():
        at, context = _request_context(workspace, extra)
        principal = principal_entity(actor, workspace.pk, at)
        principal_values = {f"principal_{k}": v for k, v in principal["attrs"].items()}
        entities, resources, values = [principal, _workspace_entity(workspace)], [], []
        for pk, kind, attributes in members:
            entity, resource_values = _resource_entity(kind, pk, attributes, workspace)
            if kind != "Workspace":
                entities.append(entity)
            resources.append(entity["uid"])
            values.append(principal_values | resource_values)
        batch = cedar.evaluate_batch(
            policies_in_force(organization_id, workspace.pk),
            principal=principal["uid"],
            action=action,
            resources=resources,
            entities=entities,
            context=context,
            message_values=values,
        )
        outcomes.update({pk: outcome for (pk, _, _), outcome in zip(members, batch, strict=True)})
    return outcomes


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
    in_force = Policy.objects.filter(
        Q(organization__isnull=True) | Q(organization_id=workspace.organization_id), enabled=True
    ).exclude(disabled_workspaces=workspace.pk)
    texts = [
        (name, text)
        for name, text in in_force.order_by("name", "id").values_list("name", "text")
        if draft is None or name != draft[0]
    ]
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


def region_list_filter(actor, *, region_field: str = "data_region", workspace_field: str = "workspace"):
    """The shipped region-data-residency rule as SQL, for lists: rows of the actor's region, or of
    workspaces where the rule is switched off. Single objects are still decided by Cedar."""
    rule = _memo(
        ("region-rule",),
        lambda: (
            Policy.objects.filter(organization__isnull=True, name="region-data-residency", enabled=True)
            .prefetch_related("disabled_workspaces")
            .first()
        ),
    )
    if rule is None:
        return Q()
    switched_off = Q(**{f"{workspace_field}__in": [w.pk for w in rule.disabled_workspaces.all()]})
    return (Q(**{region_field: actor.region}) | switched_off) if actor.region else switched_off
