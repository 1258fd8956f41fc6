"""How each governed model is placed in the tenancy tree and which actions guard it.

Apps register their models in ``AppConfig.ready``; the decision point, the visible-to
querysets, the authentication backend, the admin and the API all read this one table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import models

VERBS = ("view", "add", "change", "delete")


@dataclass(frozen=True)
class Resource:
    """A governed model.

    ``organization_field`` and ``workspace_field`` are ORM paths from the model to the id of
    its organisation and workspace (``"pk"`` when the model is that object itself);
    ``workspace_field`` is None for organisation-level models and ``organization_field`` is None
    for platform-wide reference data. ``actions`` maps Django's verbs to portal actions.
    ``policy_entity`` describes an object to the attribute policies.
    """

    model: type[models.Model]
    organization_field: str | None
    workspace_field: str | None
    actions: dict[str, str] = field(default_factory=dict)
    # For models the attribute policies speak about: obj -> (Cedar type, attributes, workspace).
    policy_entity: Callable[[Any], tuple[str, dict, Any]] | None = field(default=None, compare=False)
    # For long lists: the attribute policies' coarse part as SQL (actor -> Q), e.g. the region rule.
    list_policy: Callable[[Any], Any] | None = field(default=None, compare=False)
    organization_row_actions: dict[str, str] = field(default_factory=dict)

    def action_for(self, verb: str) -> str | None:
        return self.actions.get(verb)

    def action_on(self, action: str, workspace_id: int | None) -> str:
        """The action that guards ``action`` on a row of ``workspace_id`` (None: the organisation's)."""
        if workspace_id is None and self.workspace_field is not None:
            return self.organization_row_actions.get(action, action)
        return action

    def organization_id_of(self, obj: models.Model) -> int | None:
        return _follow(obj, self.organization_field)

    def workspace_id_of(self, obj: models.Model) -> int | None:
        return _follow(obj, self.workspace_field)


def _follow(obj: models.Model, path: str | None):
    if path is None:
        return None
    if path == "pk":
        return obj.pk
    *hops, last = path.split("__")
    for hop in hops:
        obj = getattr(obj, hop)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id")


_registry: dict[type[models.Model], Resource] = {}


def register(resource: Resource) -> None:
    """Register a governed model; registering twice with a different shape is a bug."""
    unknown = set(resource.actions) - set(VERBS)
    if unknown:
        raise ValueError(f"Unknown verbs {sorted(unknown)} for {resource.model.__name__}")
    existing = _registry.get(resource.model)
    if existing is not None and existing != resource:
        raise ValueError(f"{resource.model.__name__} is already registered differently")
    _registry[resource.model] = resource


def resource_for(model_or_obj) -> Resource | None:
    """Return the resource of a model class or instance, or None when it is not governed."""
    model = model_or_obj if isinstance(model_or_obj, type) else type(model_or_obj)
    model = model._meta.concrete_model if hasattr(model, "_meta") else model
    return _registry.get(model)


def organization_row_action_codes() -> frozenset[str]:
    """The actions that guard rows of an organisation itself: they never reach a workspace's row."""
    return frozenset(
        code for resource in _registry.values() for code in resource.organization_row_actions.values()
    )


def registered_resources() -> list[Resource]:
    return list(_registry.values())
