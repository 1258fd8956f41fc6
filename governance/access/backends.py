"""``user.has_perm(perm, obj)`` answered by the decision point, so Django's own checks agree."""

from __future__ import annotations

from django.apps import apps

from governance.access.decision import decide
from governance.core.resources import VERBS, registered_resources, resource_for


def action_for_permission(perm: str) -> str | None:
    """Map a Django permission such as ``tenancy.change_workspace`` to a portal action."""
    app_label, _, codename = perm.partition(".")
    verb, _, model_name = codename.partition("_")
    if verb not in VERBS or not model_name:
        return None
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        return None
    resource = resource_for(model)
    return resource.action_for(verb) if resource else None


class DecisionPointBackend:
    """Authentication backend that authenticates nobody and answers permissions via ``decide``."""

    def authenticate(self, request, **credentials):
        return None

    def get_user(self, user_id):
        return None

    def has_perm(self, user_obj, perm: str, obj=None) -> bool:
        action = action_for_permission(perm)
        return action is not None and decide(user_obj, action, obj).allowed

    def has_module_perms(self, user_obj, app_label: str) -> bool:
        for resource in registered_resources():
            view = resource.action_for("view")
            if resource.model._meta.app_label == app_label and view and decide(user_obj, view).allowed:
                return True
        return False
