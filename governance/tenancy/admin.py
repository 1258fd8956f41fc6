"""Organisations, workspaces, memberships and roles in the control panel."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from governance.access.admin_base import ActorFormMixin, GovernedModelAdmin, ReadOnlyModelAdmin
from governance.tenancy import selectors, services
from governance.tenancy.models import (
    WORKSPACE_SETTINGS,
    Membership,
    Organization,
    Role,
    RolePermission,
    Workspace,
)


@admin.register(Organization)
class OrganizationAdmin(GovernedModelAdmin):
    list_display = ["name", "slug", "created_at"]
    fields = ["name", "slug", "created_at"]
    readonly_fields = ["slug", "created_at"]
    search_fields = ["name", "slug"]

    def service_save(self, request, obj, form, change):
        return services.organization_update(
            actor=request.user, organization=obj, name=form.cleaned_data["name"]
        )


class WorkspaceForm(forms.ModelForm):
    """A workspace of the actor's own organisation; the slug is unique within it."""

    class Meta:
        model = Workspace
        fields = list(WORKSPACE_SETTINGS)

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.instance.organization = actor.organization

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        taken = Workspace.objects.filter(organization_id=self.instance.organization_id, slug=slug)
        if taken.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("Another workspace of this organisation uses this slug.")
        return slug


@admin.register(Workspace)
class WorkspaceAdmin(ActorFormMixin, GovernedModelAdmin):
    form = WorkspaceForm
    list_display = ["name", "slug", "organization", "data_region", "time_zone"]
    list_filter = ["data_region"]
    list_select_related = ["organization"]
    search_fields = ["name", "slug"]

    def get_readonly_fields(self, request, obj=None):
        return ["slug"] if obj is not None else []

    def service_save(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in form.Meta.fields if name in form.cleaned_data}
        if change:
            return services.workspace_update(actor=request.user, workspace=obj, **values)
        return services.workspace_create(actor=request.user, organization=request.user.organization, **values)


class MembershipForm(forms.ModelForm):
    """Field-level validation of a membership; the service checks again when it writes."""

    class Meta:
        model = Membership
        fields = ["user", "workspace", "role"]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        if "user" in self.fields:
            user_model = self.fields["user"].queryset.model
            self.fields["user"].queryset = user_model.objects.filter(
                organization_id=actor.organization_id, is_active=True
            )
        if "workspace" in self.fields:
            self.fields["workspace"].queryset = selectors.workspaces_manageable_by(actor)
            self.fields["workspace"].help_text = "Leave empty only for organisation-wide roles."
        if "role" in self.fields:
            self.fields["role"].empty_label = None

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        instance = self.instance
        user = cleaned.get("user", instance.user if instance.pk else None)
        workspace = cleaned.get("workspace", instance.workspace if instance.pk else None)
        role = cleaned.get("role")
        if user is None or role is None:
            return cleaned
        organization = workspace.organization if workspace else self.actor.organization
        services.membership_validate(
            user=user, organization=organization, workspace=workspace, role=role, exclude_pk=instance.pk
        )
        return cleaned

    def validate_unique(self):
        # The model's unique constraints would repeat membership_validate's clearer messages.
        pass


@admin.register(Membership)
class MembershipAdmin(ActorFormMixin, GovernedModelAdmin):
    form = MembershipForm
    list_display = ["user", "role", "workspace", "organization", "created_at"]
    list_filter = ["role", "workspace"]
    list_select_related = ["user", "role", "workspace", "organization"]
    search_fields = ["user__email", "user__display_name", "workspace__name"]

    def get_readonly_fields(self, request, obj=None):
        return ["user", "workspace"] if obj is not None else []

    def service_save(self, request, obj, form, change):
        if change:
            return services.membership_change_role(
                actor=request.user, membership=obj, role=form.cleaned_data["role"]
            )
        workspace = form.cleaned_data.get("workspace")
        return services.membership_create(
            actor=request.user,
            user=form.cleaned_data["user"],
            role=form.cleaned_data["role"],
            workspace=workspace,
            organization=workspace.organization if workspace else request.user.organization,
        )

    def service_delete(self, request, obj) -> None:
        services.membership_remove(actor=request.user, membership=obj)


class RolePermissionInline(admin.TabularInline):
    model = RolePermission
    fields = ["action"]
    readonly_fields = ["action"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return True


@admin.register(Role)
class RoleAdmin(ReadOnlyModelAdmin):
    """What each role may do. Changed by migrations only, so every change is reviewed as code."""

    list_display = ["name", "code", "scope"]
    fields = ["code", "name", "scope", "description"]
    inlines = [RolePermissionInline]
