"""The project's own app configurations."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class ControlPanelAdminConfig(AdminConfig):
    """``django.contrib.admin`` with the control panel as its default site."""

    default_site = "governance.admin_site.ControlPanelSite"

    def ready(self) -> None:
        from governance.access.admin_base import GovernedModelAdmin  # models are loaded by now

        super().ready()  # autodiscovers every app's admin module
        for model, model_admin in list(admin.site._registry.items()):
            if not isinstance(model_admin, GovernedModelAdmin):
                admin.site.unregister(model)
