"""SCIM in the control panel: tokens (created by platform administrators, the plaintext shown once,
revoked on their own page) and the groups identity providers pushed (read-only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from accounts.models import ScimGroup, ScimToken
from accounts.scim.tokens import (
    DEFAULT_LIFETIME_DAYS,
    MAX_LIFETIME_DAYS,
    scim_token_create,
    scim_token_revoke,
)
from governance.access.admin_base import GovernedModelAdmin, ReadOnlyModelAdmin


class ScimTokenForm(forms.ModelForm):
    """Name the identity provider and choose how long the token lives."""

    days = forms.IntegerField(
        min_value=1,
        max_value=MAX_LIFETIME_DAYS,
        initial=DEFAULT_LIFETIME_DAYS,
        help_text=f"Lifetime in days (1 to {MAX_LIFETIME_DAYS}); create a new token before it expires.",
    )

    class Meta:
        model = ScimToken
        fields = ["name"]

    def _post_clean(self) -> None:
        # The service builds and validates the row (prefix, digest, expiry).
        pass


class ScimTokenRevokeForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Required: why.")


@admin.register(ScimToken)
class ScimTokenAdmin(GovernedModelAdmin):
    """SCIM tokens of the organisation: who made them, when they expire, when last used."""

    form = ScimTokenForm
    list_display = [
        "name",
        "shown_prefix",
        "status",
        "created_at",
        "expires_at",
        "last_used_at",
        "created_by",
    ]
    list_select_related = ["created_by"]
    readonly_fields = [
        "name",
        "shown_prefix",
        "status",
        "organization",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    change_form_template = "admin/accounts/scimtoken/change_form.html"

    def get_fields(self, request, obj=None):
        return ["name", "days"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # nothing of a token is edited; it is revoked on its own page

    @admin.display(description="token")
    def shown_prefix(self, token: ScimToken) -> str:
        return f"gpscim_{token.prefix}_…"

    @admin.display(description="status")
    def status(self, token: ScimToken) -> str:
        return token.refusal(timezone.now()) or "active"

    def service_save(self, request, obj, form, change):
        issued = scim_token_create(
            actor=request.user,
            organization=request.user.organization,
            name=form.cleaned_data["name"],
            days=form.cleaned_data["days"],
        )
        request.scim_issued = issued
        return issued.token

    def response_add(self, request, obj, post_url_continue=None):
        """Show the plaintext this once (nothing keeps it), with the base URL for the IdP."""
        context = {
            **self.admin_site.each_context(request),
            "title": f"SCIM token for {obj.name}",
            "issued": request.scim_issued,
            "opts": self.model._meta,
            "base_url": request.build_absolute_uri("/scim/v2"),
        }
        response = TemplateResponse(request, "admin/accounts/scimtoken/issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def get_urls(self):
        view = self.admin_site.admin_view(self.revoke_view)
        return [path("<int:token_id>/revoke/", view, name="accounts_scimtoken_revoke"), *super().get_urls()]

    def revoke_view(self, request, token_id: int):
        token = get_object_or_404(self.get_queryset(request), pk=token_id)
        form = ScimTokenRevokeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                scim_token_revoke(actor=request.user, token=token, reason=form.cleaned_data["reason"])
            except ValidationError as error:
                form.add_error(None, error.messages)
            else:
                messages.success(
                    request, f"{token} is revoked: the identity provider is refused from now on."
                )
                return HttpResponseRedirect(reverse("admin:accounts_scimtoken_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Revoke {token}",
            "token": token,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/scimtoken/revoke.html", context)


@admin.register(ScimGroup)
class ScimGroupAdmin(ReadOnlyModelAdmin):
    """Groups as the identity provider sent them (names and ids stay queryable for a later
    group-to-role mapping); they change only over SCIM."""

    list_display = ["display_name", "external_id", "member_count", "updated_at"]
    search_fields = ["display_name", "external_id"]
    fields = ["display_name", "external_id", "member_list", "created_at", "updated_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members")

    @admin.display(description="members")
    def member_count(self, group: ScimGroup) -> int:
        return len(group.members.all())

    @admin.display(description="members")
    def member_list(self, group: ScimGroup) -> str:
        return ", ".join(user.email for user in group.members.all()) or "—"
