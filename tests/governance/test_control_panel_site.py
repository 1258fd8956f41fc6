"""The control panel is Django's default admin site, and only governed admins stay on it."""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin

from governance.access.admin_base import GovernedModelAdmin
from governance.admin_site import ControlPanelSite, site


def test_the_default_site_is_the_control_panel():
    assert isinstance(
        admin.site._wrapped if hasattr(admin.site, "_wrapped") else admin.site, ControlPanelSite
    )


def test_only_governed_admins_stay_registered():
    """GIVEN third-party apps that register stock admins (auth, allauth, django-otp, knox) WHEN the
    site is ready THEN none of them is on the control panel: every admin there asks the decision
    point and writes through services."""
    assert site._registry, "the apps' admins are registered"
    assert all(isinstance(model_admin, GovernedModelAdmin) for model_admin in site._registry.values())
    stock = {
        "auth.Group",
        "knox.AuthToken",
        "otp_totp.TOTPDevice",
        "otp_static.StaticDevice",
        "account.EmailAddress",
    }
    registered = {model._meta.label for model in site._registry}
    assert stock & registered == set()
    assert all(apps.is_installed(app) for app in ("knox", "django_otp.plugins.otp_totp", "allauth.account"))


def test_a_stock_admin_registered_late_is_left_out(monkeypatch):
    """GIVEN the site after start-up WHEN some app registers a stock ModelAdmin (or none) THEN the
    control panel does not take it; a governed admin it does take."""
    from django.contrib.sessions.models import Session

    monkeypatch.setattr(site._wrapped, "_registry", dict(site._registry))
    site.register(Session)
    site.register(Session, admin.ModelAdmin)
    assert Session not in site._registry

    class SessionAdmin(GovernedModelAdmin):
        pass

    site.register(Session, SessionAdmin)
    assert isinstance(site._registry[Session], SessionAdmin)
