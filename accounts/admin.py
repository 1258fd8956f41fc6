"""User accounts in the control panel (platform administrators, own organisation only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts import services
from accounts.models import User, UserSession
from accounts.sessions import user_sessions_end_all
from governance.access.decision import decide
from governance.admin_site import GovernedModelAdmin, site


class UserForm(forms.ModelForm):
    """E-mail and display name; passwords are set by their owner (or SSO), never typed by an admin."""

    class Meta:
        model = User
        fields = [
            "email",
            "display_name",
            "is_active",
            "region",
            "department",
            "manager",
            "security_training_expires_on",
        ]

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"]).strip().lower()
        if User.objects.filter(email=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("An account with this e-mail address exists already.")
        return email

    def validate_unique(self):
        # clean_email gives the clearer message for the one constraint a form can break.
        pass


@admin.register(User, site=site)
class UserAdmin(GovernedModelAdmin):
    form = UserForm
    list_display = ["email", "display_name", "is_active", "last_login", "date_joined", "live_sessions"]
    list_filter = ["is_active"]
    search_fields = ["email", "display_name"]
    readonly_fields = ["last_login", "date_joined"]

    def get_fields(self, request, obj=None):
        fields = ["email", "display_name", "region", "department", "manager", "security_training_expires_on"]
        return [*fields, "is_active", "last_login", "date_joined"] if obj is not None else fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "manager":
            kwargs["queryset"] = User.objects.filter(
                organization_id=request.user.organization_id, is_active=True
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            user = services.user_create(
                actor=request.user,
                organization=request.user.organization,
                email=data["email"],
                display_name=data.get("display_name", ""),
            )
            profile = {
                name: data[name]
                for name in ("region", "department", "manager", "security_training_expires_on")
                if data.get(name)
            }
            return services.user_update(actor=request.user, user=user, **profile) if profile else user
        profile = {name: data[name] for name in services.USER_FIELDS if name in data}
        user = services.user_update(actor=request.user, user=obj, **profile)
        if "is_active" in data:
            user = services.user_set_active(actor=request.user, user=user, active=data["is_active"])
        return user

    def get_queryset(self, request):
        live = Count("sessions", filter=Q(sessions__ended_at__isnull=True))
        return super().get_queryset(request).annotate(live_session_count=live)

    @admin.display(description="sessions")
    def live_sessions(self, user) -> str:
        count = user.live_session_count
        if not count:
            return "—"
        url = reverse("admin:accounts_user_force_logout", args=[user.pk])
        return format_html('{} live · <a href="{}">Sign out everywhere…</a>', count, url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.force_logout_view)
        return [
            path("<int:user_id>/force-logout/", view, name="accounts_user_force_logout"),
            *super().get_urls(),
        ]

    def force_logout_view(self, request, user_id):
        """End every session of the user and revoke their API tokens (user.manage; recorded)."""
        user = get_object_or_404(self.get_queryset(request), pk=user_id)
        if not decide(request.user, "user.manage", user).allowed:
            raise PermissionDenied
        if request.method == "POST":
            ended = user_sessions_end_all(actor=request.user, user=user)
            messages.success(
                request, f"{user} is signed out everywhere ({ended} session(s)); API tokens revoked."
            )
            return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
        live = UserSession.objects.filter(user=user, ended_at__isnull=True).order_by("-last_seen_at")
        context = {**self.admin_site.each_context(request), "title": f"Sign {user} out everywhere",
                   "target": user, "live": live, "opts": self.model._meta}  # fmt: skip
        return TemplateResponse(request, "admin/accounts/force_logout.html", context)


from accounts import sso_admin  # noqa: E402, F401  (identity providers, mappings, sign-in policy)
