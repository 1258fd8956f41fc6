"""Routes the secrets store's models to the ``secrets`` database and everything else away from it.

A model joins the secrets store by setting ``secrets_store = True`` on the class. Data
migrations (RunPython, RunSQL) of other apps never run on the secrets database, and the secrets
store's tables are never created in the main one.
"""

from __future__ import annotations

SECRETS = "secrets"


def _in_store(model) -> bool:
    return bool(getattr(model, "secrets_store", False))


class SecretsRouter:
    def db_for_read(self, model, **hints):
        return SECRETS if _in_store(model) else None

    def db_for_write(self, model, **hints):
        return SECRETS if _in_store(model) else None

    def allow_relation(self, obj1, obj2, **hints):
        if _in_store(type(obj1)) != _in_store(type(obj2)):
            return False  # no foreign key crosses the boundary: the main database holds ids only
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # Migrations hand over historical models, which lack class attributes: ask the real one.
        model = hints.get("model")
        name = model_name or (model._meta.model_name if model is not None else None)
        if name is not None and _in_store(_real_model(app_label, name)):
            return db == SECRETS
        return db != SECRETS


def _real_model(app_label: str, model_name: str):
    from django.apps import apps

    try:
        return apps.get_model(app_label, model_name)
    except LookupError:
        return None
