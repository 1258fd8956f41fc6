"""User accounts in the control panel (platform administrators, own organisation only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from accounts import services
from accounts.models import User
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
    list_display = ["email", "display_name", "is_active", "last_login", "date_joined"]
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
