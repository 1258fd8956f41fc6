"""The project's own app configurations."""

from django.contrib.admin.apps import AdminConfig


class ControlPanelAdminConfig(AdminConfig):
    """``django.contrib.admin`` with the control panel as its default site: the apps' admins
    register on it without importing the top floor, and it takes governed admins only."""

    default_site = "governance.admin_site.ControlPanelSite"
