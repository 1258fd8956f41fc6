"""The one access decision point.

``decide(actor, action, obj)`` answers every access question in the portal — admin, pages,
API and tasks — by combining:

1. the actor's roles: an organisation-wide role counts everywhere in that organisation, a
   workspace role counts in its workspace (only for workspace-scoped actions);
2. per-object grants held through django-guardian (direct foreign-key tables);
3. deny rules, which win over any allow: an unknown action, an inactive or anonymous actor,
   an object of another organisation, and the attribute policies (Cedar ``forbid`` policies,
   see ``governance.access.cedar``), evaluated once roles or grants allowed.

Nothing short-cuts it: ``is_superuser`` is never consulted (and is always false).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from guardian.core import ObjectPermissionChecker
from guardian.models import UserObjectPermission
from guardian.utils import get_user_obj_perms_model

from governance.access.actions import Action, Scope, get_action
from governance.access.policies import policy_outcome, policy_outcomes
from governance.core.context import current_context
from governance.core.errors import ReasonedRefusal
from governance.core.resources import organization_row_action_codes, resource_for
from governance.tenancy.models import Membership


@dataclass(frozen=True)
class Decision:
    """The answer of the decision point, with the reasons that led to it."""

    allowed: bool
    action: str
    reasons: tuple[str, ...]
    actor_id: int | None = None
    target: models.Model | None = field(default=None, compare=False, repr=False)
    organization_id: int | None = None
    workspace_id: int | None = None
    policies: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def message(self) -> str:
        """A plain sentence for the person who was refused."""
        if self.allowed:
            return "Allowed: " + "; ".join(self.reasons)
        if self.policies:  # policy messages are whole sentences written by their authors
            return " ".join(self.reasons)
        action = get_action(self.action)
        what = action.description.rstrip(".").lower() if action else self.action
        return f"You may not {what}: " + "; ".join(self.reasons) + "."

    @property
    def sensitive(self) -> bool:
        action = get_action(self.action)
        return bool(action and action.sensitive)


class AccessDenied(ReasonedRefusal):
    """Raised by ``require`` and services; carries the decision for the error page and the ledger."""

    def __init__(self, decision: Decision):
        super().__init__(decision.message)
        self.decision = decision


@dataclass
class _Grants:
    """What an actor's memberships allow, loaded in one query and cached for one request."""

    org_actions: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    org_roles: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    ws_actions: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    ws_roles: dict[int, str] = field(default_factory=dict)
    ws_orgs: dict[int, int] = field(default_factory=dict)
    object_perms: dict[tuple[type, Any], set[str]] = field(default_factory=dict)

    def holds_anywhere(self, action: Action) -> str | None:
        for org_id, actions in self.org_actions.items():
            if action.code in actions:
                return f"organisation-wide role {_join(self.org_roles[org_id])} grants {action.code}"
        if action.scope is not Scope.ORGANIZATION:
            for ws_id, actions in self.ws_actions.items():
                if action.code in actions:
                    return f"role {self.ws_roles[ws_id]} in workspace {ws_id} grants {action.code}"
        return None


def _join(codes: set[str]) -> str:
    return ", ".join(sorted(codes))


def _load_grants(actor) -> _Grants:
    grants = _Grants()
    rows = Membership.objects.filter(user_id=actor.pk).values_list(
        "organization_id", "workspace_id", "role_id", "role__permissions__action"
    )
    for organization_id, workspace_id, role_id, action in rows:
        if workspace_id is None:
            grants.org_roles[organization_id].add(role_id)
            if action:
                grants.org_actions[organization_id].add(action)
        else:
            grants.ws_roles[workspace_id] = role_id
            grants.ws_orgs[workspace_id] = organization_id
            if action:
                grants.ws_actions[workspace_id].add(action)
    return grants


def _grants_of(actor, *, fresh: bool) -> _Grants:
    # Cached in the request's (or job's) context only, never on the user object: a user object
    # can outlive a change of its memberships, a request cannot.
    context = current_context()
    cache = context.grants if context is not None else None
    grants = None if fresh or cache is None else cache.get(actor.pk)
    if grants is None:
        grants = _load_grants(actor)
        if cache is not None:
            cache[actor.pk] = grants
    return grants


@dataclass(frozen=True)
class ListReach:
    """Where an actor's roles let it perform one action across a list, decided before the query.

    ``organization`` is true when a role covers every object of the actor's organisation (an
    organisation-wide role, or any role there for an action of any workspace); otherwise
    ``workspaces`` holds the workspaces whose role grants the action. Per-object grants are
    not included: they are read by the list's own query.
    """

    organization: bool
    workspaces: frozenset[int]


def list_reach(actor, action: Action) -> ListReach:
    """What ``decide`` would find in the actor's roles for ``action`` on any object of its
    organisation, from the same per-request memo of memberships (no query once it is loaded)."""
    grants = _grants_of(actor, fresh=False)
    organization_id = actor.organization_id
    if action.code in grants.org_actions.get(organization_id, ()):
        return ListReach(True, frozenset())
    held = frozenset(ws for ws, actions in grants.ws_actions.items() if action.code in actions)
    if action.scope is Scope.ANY_WORKSPACE:
        return ListReach(any(grants.ws_orgs.get(ws) == organization_id for ws in held), frozenset())
    return ListReach(False, held if action.scope is Scope.WORKSPACE else frozenset())


def forget(actor) -> None:
    """Drop the cached grants of ``actor`` (after its memberships or grants changed)."""
    context = current_context()
    if context is not None and actor is not None:
        context.grants.pop(actor.pk, None)


def _object_perms(actor, obj: models.Model, grants: _Grants) -> set[str]:
    key = (type(obj), obj.pk)
    if key not in grants.object_perms:
        grants.object_perms[key] = set(ObjectPermissionChecker(actor).get_perms(obj))
    return grants.object_perms[key]


def grant_model_for(model: type[models.Model]):
    """The direct foreign-key grant table of ``model``, or None when its objects take no grants."""
    grant_model = get_user_obj_perms_model(model)
    return None if grant_model is UserObjectPermission else grant_model


def guardian_codenames(resource, action_code: str) -> list[str]:
    """Guardian codenames (``<verb>_<model>``) that grant ``action_code`` on the resource's objects.

    Only models with a direct foreign-key grant table take per-object grants (guardian's
    generic table would need a join on text ids, slow at scale and easy to get wrong).
    """
    if grant_model_for(resource.model) is None:
        return []
    model_name = resource.model._meta.model_name
    return [f"{verb}_{model_name}" for verb, code in resource.actions.items() if code == action_code]


def decide(
    actor, action: str, obj: models.Model | None = None, context: dict | None = None, *, fresh: bool = False
) -> Decision:
    """Decide whether ``actor`` may perform ``action`` (on ``obj``, when given).

    Without ``obj`` the question is whether the actor holds the action anywhere (used for
    menus and list pages, which then show only ``restrict``-ed rows). ``context`` carries
    request attributes for the attribute policies. ``fresh`` reloads the actor's grants from
    the database, as services do inside their transaction.
    """
    decision = _decide(actor, action, obj, context, fresh=fresh)
    if not decision.allowed:
        # Kept for the request: the 403 page explains them, the middleware records sensitive ones.
        request_context = current_context()
        if request_context is not None:
            request_context.denials.append(decision)
    return decision


def _decide(
    actor, action_code: str, obj, context: dict | None, *, fresh: bool, policies: bool = True
) -> Decision:
    if getattr(actor, "is_service_account", False):
        return decide_for_service_account(actor, action_code, obj)
    actor_id = getattr(actor, "pk", None)

    def deny(reason: str, **where) -> Decision:
        return Decision(False, action_code, (reason,), actor_id, obj, **where)

    action = get_action(action_code)
    if action is None:
        return deny(f"the action {action_code!r} is unknown, and unknown actions are denied")
    if actor is None or not getattr(actor, "is_authenticated", False):
        return deny("you are not signed in")
    if not actor.is_active:
        return deny("the account is deactivated")

    grants = _grants_of(actor, fresh=fresh)
    resource = resource_for(obj) if obj is not None else None
    if obj is not None and resource is None:
        return deny(f"{type(obj).__name__} is not a governed object")

    if obj is None or resource.organization_field is None:
        reason = grants.holds_anywhere(action)
        if reason:
            return Decision(True, action_code, (reason,), actor_id, obj)
        return deny("none of your roles grants this")

    organization_id = resource.organization_id_of(obj)
    workspace_id = resource.workspace_id_of(obj)
    where = {"organization_id": organization_id, "workspace_id": workspace_id}
    if organization_id != actor.organization_id:
        return deny("it belongs to another organisation", **where)
    if workspace_id is not None and action_code in organization_row_action_codes():
        return deny("this action is for the organisation's own records, not a workspace's", **where)
    if (guarded_by := resource.action_on(action_code, workspace_id)) != action_code:
        # A row of the organisation itself (an organisation event, say): its own action guards it.
        action_code, action = guarded_by, get_action(guarded_by)
        if action is None:
            return deny(f"the action {action_code!r} is unknown, and unknown actions are denied", **where)

    reasons: list[str] = []
    if action_code in grants.org_actions.get(organization_id, ()):
        reasons.append(f"organisation-wide role {_join(grants.org_roles[organization_id])} grants it")
    in_workspace = action.scope is Scope.WORKSPACE and workspace_id is not None
    if in_workspace and action_code in grants.ws_actions.get(workspace_id, ()):
        reasons.append(f"your role {grants.ws_roles[workspace_id]} in this workspace grants it")
    if action.scope is Scope.ANY_WORKSPACE and not reasons:
        held = [
            ws
            for ws, actions in grants.ws_actions.items()
            if action_code in actions and grants.ws_orgs.get(ws) == organization_id
        ]
        if held:
            reasons.append(f"your role {grants.ws_roles[held[0]]} in workspace {held[0]} grants it")
    if not reasons:
        codenames = guardian_codenames(resource, action_code)
        if codenames and obj.pk is not None:
            held = _object_perms(actor, obj, grants).intersection(codenames)
            if held:
                reasons.append(f"a grant on this object ({_join(held)}) allows it")
    if reasons:
        outcome = (
            policy_outcome(actor, action_code, obj, resource, organization_id, context) if policies else None
        )
        if outcome is not None and outcome.forbidden:
            return Decision(
                False, action_code, outcome.messages, actor_id, obj, policies=outcome.policies, **where
            )
        return Decision(True, action_code, tuple(reasons), actor_id, obj, **where)
    if (
        workspace_id is not None
        and workspace_id not in grants.ws_roles
        and organization_id not in grants.org_roles
    ):
        return deny("you are not a member of this workspace", **where)
    return deny("none of your roles here grants this", **where)


def decide_many(actor, action: str, objects: list, context: dict | None = None) -> list[Decision]:
    """``decide`` for many objects of one model; the attribute policies run in Cedar batches.

    Lists are first narrowed in SQL (``restrict``); this decides the rows on display one by one
    without one policy evaluation call per row.
    """
    if getattr(actor, "is_service_account", False):
        return [decide(actor, action, obj) for obj in objects]
    decisions = [_decide(actor, action, obj, context, fresh=False, policies=False) for obj in objects]
    allowed = [
        (index, obj)
        for index, (obj, decision) in enumerate(zip(objects, decisions, strict=True))
        if decision.allowed
    ]
    if allowed:
        resource = resource_for(allowed[0][1])
        organization_id = resource.organization_id_of(allowed[0][1])
        outcomes = policy_outcomes(
            actor, action, [obj for _, obj in allowed], resource, organization_id, context
        )
        for index, obj in allowed:
            outcome = outcomes.get(obj.pk)
            if outcome is not None and outcome.forbidden:
                old = decisions[index]
                decisions[index] = Decision(
                    False,
                    action,
                    outcome.messages,
                    old.actor_id,
                    obj,
                    old.organization_id,
                    old.workspace_id,
                    outcome.policies,
                )
    request_context = current_context()
    if request_context is not None:
        request_context.denials.extend(decision for decision in decisions if not decision.allowed)
    return decisions


def require(
    actor, action: str, obj: models.Model | None = None, context: dict | None = None, *, fresh: bool = False
) -> Decision:
    """Return the allowing decision, or raise ``AccessDenied`` with the reasons."""
    decision = decide(actor, action, obj, context, fresh=fresh)
    if not decision.allowed:
        raise AccessDenied(decision)
    return decision


# --- Service accounts -------------------------------------------------------------------------


def decide_for_service_account(principal, action_code: str, obj: models.Model | None = None) -> Decision:
    """The rule for a service account's principal: one of its scopes must map to the action and
    the object must be in the account's own workspace; everything else is denied.

    A principal whose ``workspace_id`` is None (a SCIM token) is confined to its organisation.
    A principal carries ``allowed_actions`` (from its scopes), ``workspace_id``,
    ``organization_id``, ``is_active`` and ``label``. Roles and grants are people's; the attribute
    policies speak about people (region, manager, training), so they are not asked: the scopes
    and the workspace confine the account. ``actor_id`` stays None: it names users only.
    """

    def deny(reason: str, **where) -> Decision:
        return Decision(False, action_code, (f"{principal.label}: {reason}",), None, obj, **where)

    action = get_action(action_code)
    if action is None:
        return deny(f"the action {action_code!r} is unknown, and unknown actions are denied")
    if not principal.is_active:
        return deny("the service account is disabled")
    if action_code not in principal.allowed_actions or action_code == "admin.access":
        return deny("none of its scopes grants this")
    if obj is None:
        return Decision(True, action_code, (f"{principal.label}: a scope grants {action_code}",))
    resource = resource_for(obj)
    if principal.workspace_id is None:
        # An organisation-wide machine principal (a SCIM token): confined to its organisation.
        if resource is None or resource.organization_field is None:
            return deny(f"{type(obj).__name__} is not an object of an organisation")
        where = {
            "organization_id": resource.organization_id_of(obj),
            "workspace_id": resource.workspace_id_of(obj),
        }
        if where["organization_id"] != principal.organization_id:
            return deny("it belongs to another organisation", **where)
        guarded_by = resource.action_on(action_code, where["workspace_id"])
        if guarded_by not in principal.allowed_actions:
            return deny(f"none of its scopes grants {guarded_by}", **where)
        return Decision(
            True, action_code, (f"{principal.label}: allowed in its organisation",), None, obj, **where
        )
    if resource is None or resource.workspace_field is None:
        return deny(f"{type(obj).__name__} is not an object of a workspace")
    where = {
        "organization_id": resource.organization_id_of(obj),
        "workspace_id": resource.workspace_id_of(obj),
    }
    if (
        where["workspace_id"] != principal.workspace_id
        or where["organization_id"] != principal.organization_id
    ):
        return deny("it belongs to another workspace", **where)
    return Decision(
        True, action_code, (f"{principal.label}: a scope grants it in its workspace",), None, obj, **where
    )
