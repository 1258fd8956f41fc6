"""Routes the secrets store's models to the ``secrets`` database and everything else away from it.

The store's models are named here, by (app label, model name), including names they had before
a rename: a migration of a store model is then routed by its name alone, whether or not the
model still exists in the code. Data migrations (RunPython, RunSQL) never run on the secrets
database, and the secrets store's tables are never created in the main one.
"""

from __future__ import annotations

SECRETS = "secrets"

STORE_MODELS = frozenset(
    {
        ("workflows", "credential"),
        ("workflows", "credentialversion"),
        ("workflows", "webhooksecret"),
        ("siem", "sinksecret"),
    }
)


def _in_store(model_or_instance) -> bool:
    meta = getattr(model_or_instance, "_meta", None)  # also through lazy objects (request.user)
    return meta is not None and (meta.app_label, meta.model_name) in STORE_MODELS


class SecretsRouter:
    def db_for_read(self, model, **hints):
        return SECRETS if _in_store(model) else None

    def db_for_write(self, model, **hints):
        return SECRETS if _in_store(model) else None

    def allow_relation(self, obj1, obj2, **hints):
        if _in_store(obj1) != _in_store(obj2):
            return False  # no foreign key crosses the boundary: the main database holds ids only
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        model = hints.get("model")
        name = model_name or (model._meta.model_name if model is not None else None)
        if name is not None and (app_label, name.lower()) in STORE_MODELS:
            return db == SECRETS
        return db != SECRETS
