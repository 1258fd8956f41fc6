"""DRF plumbing backed by the decision point.

DRF checks object permissions only when a view calls ``get_object``; list endpoints never do.
So every API view gets both: ``DecisionPointPermission`` (the request, then each object) and
``VisibleToFilterBackend`` (the rows of any list). Objects outside the filter answer 404.
"""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.filters import BaseFilterBackend

from governance.access.decision import decide
from governance.access.queries import restrict
from governance.core.resources import resource_for

_VERBS = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


def _model_of(view):
    queryset = getattr(view, "queryset", None)
    if queryset is None and hasattr(view, "get_queryset"):
        queryset = view.get_queryset()
    return queryset.model if queryset is not None else None


def _action(request, view) -> str | None:
    # A view may name the portal action of its extra endpoints (e.g. {"submit": "workflow.edit"}).
    named = getattr(view, "portal_actions", {}).get(getattr(view, "action", None))
    if named is not None:
        return named
    model = _model_of(view)
    resource = resource_for(model) if model is not None else None
    verb = _VERBS.get(request.method)
    return resource.action_for(verb) if resource is not None and verb else None


class DecisionPointPermission(permissions.BasePermission):
    """Allow a request when the decision point allows its action (and then, per object)."""

    message = "You do not have permission to perform this action."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        action = _action(request, view)
        if action is None:
            return False
        decision = decide(user, action)
        if not decision.allowed:
            self.message = decision.message
        return decision.allowed

    def has_object_permission(self, request, view, obj) -> bool:
        if getattr(view, "visibility_by_selector", False):
            # The view's queryset is a selector that already is the visibility rule (e.g. a
            # manager asked to decide a report's request, without a role there); its services
            # decide every write.
            return True
        action = _action(request, view)
        if action is None:
            return False
        decision = decide(request.user, action, obj)
        if not decision.allowed:
            self.message = decision.message
        return decision.allowed


class VisibleToFilterBackend(BaseFilterBackend):
    """Keep only the rows the user may view."""

    def filter_queryset(self, request, queryset, view):
        resource = resource_for(queryset.model)
        action = resource.action_for("view") if resource else None
        if action is None:
            return queryset.none()
        return restrict(queryset, request.user, action)
