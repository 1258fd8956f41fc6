"""Visible-to querysets: the decision point's answer for many rows, in one SQL query.

``restrict(queryset, actor, action)`` keeps the rows on which ``decide`` would allow
``action``: same organisation AND (an organisation-wide role granting it OR, for
workspace-scoped actions, a role granting it in the row's workspace OR a per-object grant).

The roles are decided first, in Python, from the memberships the decision point already holds
for the request (``list_reach``): an organisation-wide role makes the filter just the
organisation; otherwise the filter is ``workspace_id IN (…) OR id = ANY(ARRAY(grants))``. Both
arms are sets of ids that PostgreSQL reads from an index (the grants' array is computed once,
before the scan), so a list costs what its visible rows cost, not what the organisation holds.
Correlated EXISTS joined by OR, the earlier shape, could only be evaluated as a filter over
every row of the organisation (docs/benchmarks.md, "Visible-to lists at scale").
"""

from __future__ import annotations

from django.db import models
from django.db.models import BooleanField, Exists, Expression, F, Q, Subquery

from governance.access.actions import Scope, get_action
from governance.access.decision import grant_model_for, guardian_codenames, list_reach
from governance.core.resources import resource_for
from governance.tenancy.models import Membership, RolePermission


class InIdSet(Expression):
    """``column = ANY(ARRAY(subquery))`` on PostgreSQL, ``column IN (subquery)`` elsewhere.

    PostgreSQL computes the array once (an InitPlan) and can then look the ids up in an index,
    also as one arm of an OR; a plain ``IN (subquery)`` under an OR becomes a hashed filter
    evaluated on every row.
    """

    conditional = True

    def __init__(self, column: str, queryset: models.QuerySet):
        super().__init__(output_field=BooleanField())
        self.column = F(column)
        self.subquery = Subquery(queryset)

    def get_source_expressions(self):
        return [self.column, self.subquery]

    def set_source_expressions(self, exprs):
        self.column, self.subquery = exprs

    def as_sql(self, compiler, connection):
        column, column_params = compiler.compile(self.column)
        subquery, subquery_params = compiler.compile(self.subquery)
        return f"{column} IN {subquery}", (*column_params, *subquery_params)

    def as_postgresql(self, compiler, connection):
        column, column_params = compiler.compile(self.column)
        subquery, subquery_params = compiler.compile(self.subquery)
        return f"{column} = ANY(ARRAY{subquery})", (*column_params, *subquery_params)


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

    if resource.organization_field is None:
        granting_roles = RolePermission.objects.filter(action=action).values("role_id")
        memberships = Membership.objects.filter(user_id=actor.pk, role_id__in=granting_roles)
        holds = memberships.filter(workspace__isnull=True) if act.scope is Scope.ORGANIZATION else memberships
        return queryset.filter(Exists(holds))

    narrowed = queryset.filter(**{resource.organization_field: actor.organization_id})
    reach = list_reach(actor, act)
    if not reach.organization:
        allowed = Q()
        if reach.workspaces and resource.workspace_field is not None:
            allowed |= Q(**{f"{resource.workspace_field}__in": sorted(reach.workspaces)})
        codenames = guardian_codenames(resource, action)
        if codenames:
            allowed |= Q(InIdSet("pk", _object_grants(resource.model, actor, codenames)))
        if not allowed:  # no role and no grant table: deny by default
            return queryset.none()
        narrowed = narrowed.filter(allowed)
    return narrowed.filter(resource.list_policy(actor)) if resource.list_policy is not None else narrowed


def _object_grants(model: type[models.Model], actor, codenames: list[str]) -> models.QuerySet:
    grant_model = grant_model_for(model)
    return grant_model.objects.filter(user_id=actor.pk, permission__codename__in=codenames).values(
        "content_object_id"
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
