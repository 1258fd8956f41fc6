"""Visible-to querysets: the decision point's answer for many rows, in one SQL query.

``restrict(queryset, actor, action)`` keeps the rows on which ``decide`` would allow
``action``: same organisation AND (an organisation-wide role granting it OR, for
workspace-scoped actions, a role granting it in the row's workspace OR a per-object grant).

The roles are decided first, in Python, from the memberships the decision point already holds
for the request (``list_reach``): an organisation-wide role makes the filter just the
organisation. Otherwise the visible rows are a set of ids — the rows of the workspaces whose
role grants the action, and the objects granted directly — that PostgreSQL computes once, from
the workspace index and the grant table's index, before it fetches those rows by primary key:
``id = ANY(ARRAY(<ids in the workspaces> UNION ALL <granted ids>))`` (for a model that takes no
per-object grants, ``workspace_id IN (…)`` alone). A list then costs what
its visible rows cost, whatever the organisation holds and wherever the rows sit in the id
order. (Correlated EXISTS joined by OR, the earlier shape, were a filter over every row of the
organisation; the same arms as ``workspace_id IN (…) OR id = ANY(…)`` let the planner walk
the primary key for a first page, through every row before the visible ones:
docs/benchmarks.md, "Visible-to lists at scale".)
"""

from __future__ import annotations

from django.db import models
from django.db.models import BooleanField, Exists, Expression, F, Q, Subquery

from governance.access.actions import Scope, get_action
from governance.access.decision import grant_model_for, guardian_codenames, list_reach
from governance.core.resources import organization_row_action_codes, resource_for
from governance.tenancy.models import Membership, RolePermission


class InIdSet(Expression):
    """``column = ANY(ARRAY(<q1> UNION ALL <q2> …))`` on PostgreSQL, ``column IN (<q1>) OR …``
    elsewhere; each queryset selects one column of ids.

    PostgreSQL computes the array once (an InitPlan), each part from its own index, and then
    fetches exactly those rows through the index on ``column``.
    """

    conditional = True

    def __init__(self, column: str, *querysets: models.QuerySet):
        super().__init__(output_field=BooleanField())
        self.column = F(column)
        self.subqueries = [Subquery(queryset.order_by()) for queryset in querysets]

    def get_source_expressions(self):
        return [self.column, *self.subqueries]

    def set_source_expressions(self, exprs):
        self.column, *self.subqueries = exprs

    def as_sql(self, compiler, connection):
        column, column_params = compiler.compile(self.column)
        parts, params = [], []
        for subquery in self.subqueries:
            sql, subquery_params = compiler.compile(subquery)
            parts.append(f"{column} IN {sql}")
            params += [*column_params, *subquery_params]
        return f"({' OR '.join(parts)})", params

    def as_postgresql(self, compiler, connection):
        column, params = compiler.compile(self.column)
        parts = []
        params = list(params)
        for subquery in self.subqueries:
            sql, subquery_params = compiler.compile(subquery)
            parts.append(sql)
            params += subquery_params
        return f"{column} = ANY(ARRAY({' UNION ALL '.join(parts)}))", params


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

    visible = _workspace_rows(actor, act, resource)
    if (row_action := resource.organization_row_actions.get(action)) and resource.workspace_field:
        # Rows of the organisation itself (no workspace) answer to their own action, never to
        # a role that grants ``action`` organisation-wide.
        empty = f"{resource.workspace_field}__isnull"
        visible = None if visible is None else visible & Q(**{empty: False})
        row_act = get_action(row_action)
        if row_act is not None and list_reach(actor, row_act).organization:
            visible = Q(**{empty: True}) if visible is None else visible | Q(**{empty: True})
    if action in organization_row_action_codes():  # the organisation's own rows, never a workspace's
        if resource.workspace_field is None:
            return queryset.none()
        visible = None if visible is None else visible & Q(**{f"{resource.workspace_field}__isnull": True})
    if visible is None:  # no role here and no grant table: deny by default
        return queryset.none()
    narrowed = queryset.filter(Q(**{resource.organization_field: actor.organization_id}) & visible)
    return narrowed.filter(resource.list_policy(actor)) if resource.list_policy is not None else narrowed


def _workspace_rows(actor, act, resource) -> Q | None:
    """Which rows of the actor's organisation its roles and grants reach for ``act``: ``Q()`` for
    all of them, None for none."""
    reach = list_reach(actor, act)
    if reach.organization:
        return Q()
    in_workspaces = None
    if reach.workspaces and resource.workspace_field is not None:
        in_workspaces = Q(**{f"{resource.workspace_field}__in": sorted(reach.workspaces)})
    codenames = guardian_codenames(resource, act.code)
    if codenames:
        id_sets = [_object_grants(resource.model, actor, codenames)]
        if in_workspaces is not None:
            id_sets.insert(0, resource.model._base_manager.filter(in_workspaces).values("pk"))
        return Q(InIdSet("pk", *id_sets))
    return in_workspaces  # no grant table: the workspaces' index alone


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
        # An organisation-wide machine principal (a SCIM token) sees its organisation's rows —
        # those of the organisation itself only when its scopes grant their own action.
        rows = queryset.filter(**{resource.organization_field: principal.organization_id})
        row_action = resource.organization_row_actions.get(action)
        if row_action and resource.workspace_field and row_action not in principal.allowed_actions:
            rows = rows.filter(**{f"{resource.workspace_field}__isnull": False})
        return rows
    if not allowed or resource.workspace_field is None:
        return queryset.none()
    return queryset.filter(**{resource.workspace_field: principal.workspace_id})
