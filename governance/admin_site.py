"""The control panel: the site every app's admin registers on (Django's default site).

Only roles that hold ``admin.access`` open it, and only in a session that has passed MFA. Its
index shows the posture panels the apps register (``governance.core.posture``). It takes only
governed admins (``GovernedModelAdmin``: the decision point answers their questions, services do
their writes): a third-party app's stock admin, registered on the default site whenever it is,
never appears.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from accounts.lockout import FailureReason, login_refusal_record
from accounts.mfa import session_is_verified
from accounts.models import TokenRevocation
from accounts.services import api_tokens_revoke_all
from governance.access.admin_base import GovernedAutocompleteJsonView, GovernedModelAdmin
from governance.access.decision import decide
from governance.core.posture import posture_for


class ControlPanelLoginForm(AdminAuthenticationForm):
    """Admin login that asks the decision point instead of ``is_staff``."""

    def confirm_login_allowed(self, user) -> None:
        if not user.is_active:
            raise ValidationError(self.error_messages["inactive"], code="inactive")
        if not decide(user, "admin.access").allowed:
            login_refusal_record(
                user=user, reason=FailureReason.NO_CONTROL_PANEL_ROLE, surface="control_panel"
            )
            raise ValidationError(
                "This account has no role that opens the control panel. "
                "Builders and operators sign in at /accounts/login/.",
                code="invalid_login",
            )


class ControlPanelSite(admin.AdminSite):
    """Branding and an access rule: only roles granting ``admin.access`` open the control panel,
    and only in a session that has passed MFA (an OTP-verified admin site). Its password form
    signs in like the portal's; the MFA middleware then sends the session to verification."""

    site_header = "Governance control panel"
    site_title = "Governance portal"
    index_title = "Control panel"
    login_form = ControlPanelLoginForm
    enable_nav_sidebar = True

    def register(self, model_or_iterable, admin_class=None, **options) -> None:
        """Register governed admins only; any other (Django's, allauth's, django-otp's, knox's stock
        admins) is left out, whenever it is registered."""
        if admin_class is None or not issubclass(admin_class, GovernedModelAdmin):
            return
        super().register(model_or_iterable, admin_class, **options)

    def has_permission(self, request) -> bool:
        user = request.user
        return bool(
            user.is_active
            and user.is_authenticated
            and session_is_verified(request)
            and decide(user, "admin.access").allowed
        )

    def autocomplete_view(self, request):
        """Autocomplete answers through the decision point (see ``GovernedAutocompleteJsonView``)."""
        return GovernedAutocompleteJsonView.as_view(admin_site=self)(request)

    def password_change(self, request, extra_context=None):
        """Django's password change, and then the API tokens issued under the old password go."""
        response = super().password_change(request, extra_context)
        if request.method == "POST" and response.status_code == 302:
            api_tokens_revoke_all(
                actor=request.user, user=request.user, reason=TokenRevocation.PASSWORD_CHANGED
            )
        return response

    def index(self, request, extra_context=None):
        return super().index(request, {"posture": posture_for(request.user), **(extra_context or {})})


site = admin.site
