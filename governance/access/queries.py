"""Visible-to querysets: the decision point's answer for many rows, in one SQL query.

``restrict(queryset, actor, action)`` keeps the rows on which ``decide`` would allow
``action``: same organisation AND (an organisation-wide role granting it OR, for
workspace-scoped actions, a role granting it in the row's workspace OR a per-object grant).
Correlated EXISTS subqueries keep it one statement however many memberships exist.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Exists, OuterRef, Q

from governance.access.actions import Scope, get_action
from governance.access.decision import grant_model_for, guardian_codenames
from governance.core.resources import resource_for
from governance.tenancy.models import Membership, RolePermission


def restrict(queryset: models.QuerySet, actor, action: str) -> models.QuerySet:
    """Filter ``queryset`` to the rows ``actor`` may ``action``; unknown actions give no rows."""
    act = get_action(action)
    resource = resource_for(queryset.model)
    if act is None or resource is None or actor is None:
        return queryset.none()
    if getattr(actor, "is_service_account", False):
        return _restrict_for_service_account(queryset, actor, action, resource)
    if not getattr(actor, "is_authenticated", False) or not actor.is_active:
        return queryset.none()

    granting_roles = RolePermission.objects.filter(action=action).values("role_id")
    memberships = Membership.objects.filter(user_id=actor.pk, role_id__in=granting_roles)

    if resource.organization_field is None:
        holds = memberships.filter(workspace__isnull=True) if act.scope is Scope.ORGANIZATION else memberships
        return queryset.filter(Exists(holds))

    org_path = resource.organization_field
    allowed = Q(Exists(memberships.filter(workspace__isnull=True, organization_id=OuterRef(org_path))))
    if act.scope is Scope.WORKSPACE and resource.workspace_field is not None:
        allowed |= Q(Exists(memberships.filter(workspace_id=OuterRef(resource.workspace_field))))
    if act.scope is Scope.ANY_WORKSPACE:
        allowed |= Q(Exists(memberships.filter(organization_id=OuterRef(org_path))))
    codenames = guardian_codenames(resource, action)
    if codenames:
        allowed |= Q(Exists(_object_grants(resource.model, actor, codenames)))
    narrowed = queryset.filter(Q(**{org_path: actor.organization_id}) & allowed)
    return narrowed.filter(resource.list_policy(actor)) if resource.list_policy is not None else narrowed


def _object_grants(model: type[models.Model], actor, codenames: list[str]) -> models.QuerySet:
    grant_model = grant_model_for(model)
    return grant_model.objects.filter(
        user_id=actor.pk, permission__codename__in=codenames, content_object_id=OuterRef("pk")
    )


def _restrict_for_service_account(
    queryset: models.QuerySet, principal, action: str, resource
) -> models.QuerySet:
    """A service account sees the rows of its own workspace (a SCIM token: of its organisation),
    for the actions its scopes grant."""
    allowed = principal.is_active and action in principal.allowed_actions and action != "admin.access"
    if allowed and principal.workspace_id is None and resource.organization_field is not None:
        # An organisation-wide machine principal (a SCIM token) sees its organisation's rows.
        return queryset.filter(**{resource.organization_field: principal.organization_id})
    if not allowed or resource.workspace_field is None:
        return queryset.none()
    return queryset.filter(**{resource.workspace_field: principal.workspace_id})
