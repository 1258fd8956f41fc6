"""Service accounts in the control panel: their rotation clocks and last use; tokens are issued, and
accounts disabled or reactivated, through the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from governance.access.admin_base import ActorFormMixin, GovernedModelAdmin, ReadOnlyInlineMixin
from governance.access.decision import decide
from governance.access.queries import restrict
from governance.tenancy.models import Workspace
from workflows.integrations.models import Integration
from workflows.service_accounts import posture, services
from workflows.service_accounts.models import (
    SERVICE_ACCOUNT_SCOPES,
    DisabledReason,
    ServiceAccount,
    ServiceAccountToken,
    validate_rotation_period,
)


class ServiceAccountAddForm(forms.ModelForm):
    """Name an integration's one account, its scopes and how often its token rotates."""

    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{scope} (allows {action})") for scope, action in SERVICE_ACCOUNT_SCOPES.items()],
        widget=forms.CheckboxSelectMultiple,
        help_text="Least privilege: only what the integration needs.",
    )

    class Meta:
        model = ServiceAccount
        fields = ["integration", "name", "scopes", "rotation_period_days"]

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        if "integration" not in self.fields:
            return  # an existing account's page: everything is read-only
        manageable = restrict(Workspace.objects.all(), actor, "service_account.manage")
        self.fields["integration"].queryset = Integration.objects.filter(
            workspace__in=manageable, service_account__isnull=True
        ).select_related("workspace")

    def clean_rotation_period_days(self) -> int:
        value = self.cleaned_data["rotation_period_days"]
        validate_rotation_period(value)
        return value

    def _post_clean(self) -> None:
        # The service validates the row (and refuses a second account per integration).
        pass


class ServiceAccountDisableForm(forms.Form):
    reason = forms.ChoiceField(
        choices=[(DisabledReason.MANUAL, "By hand"), (DisabledReason.INCIDENT, "Incident")],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Required: why.")


class ServiceAccountNoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Required: why.")


class ServiceAccountTokenInline(ReadOnlyInlineMixin, admin.TabularInline):
    """A service account's tokens, read-only: prefix and dates, never a digest."""

    model = ServiceAccountToken
    fields = ["prefix", "created_at", "expires_at", "revoked_at", "grace_until", "created_by"]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None) -> bool:
        # ``obj`` is the account (None when Django asks about the inline's queryset, which it
        # then narrows to that account's tokens).
        return decide(request.user, "service_account.manage", obj).allowed


@admin.register(ServiceAccount)
class ServiceAccountAdmin(ActorFormMixin, GovernedModelAdmin):
    """Service accounts with their rotation clocks and last use; tokens are issued, and accounts
    disabled or reactivated, through the services (reactivation by a workspace owner only)."""

    list_display = [
        "name",
        "workspace",
        "integration",
        "scope_list",
        "status",
        "last_used_at",
        "last_rotated_at",
        "rotation_clock",
    ]
    list_filter = ["is_active", "disabled_reason"]
    list_select_related = ["workspace", "integration"]
    search_fields = ["name", "integration__slug"]
    form = ServiceAccountAddForm
    inlines = [ServiceAccountTokenInline]
    change_form_template = "admin/workflows/serviceaccount/change_form.html"
    readonly_fields = [
        "workspace",
        "integration",
        "name",
        "scope_list",
        "status",
        "created_by",
        "created_at",
        "last_used_at",
        "rotation_period_days",
        "last_rotated_at",
        "rotation_clock",
    ]

    def get_fields(self, request, obj=None):
        return ServiceAccountAddForm.Meta.fields if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return [] if obj is None else self.inlines

    @admin.display(description="scopes")
    def scope_list(self, account: ServiceAccount) -> str:
        return ", ".join(account.scopes)

    @admin.display(description="status")
    def status(self, account: ServiceAccount) -> str:
        return "active" if account.is_active else f"disabled: {account.get_disabled_reason_display().lower()}"

    @admin.display(description="rotation due", ordering="rotation_due_at")
    def rotation_clock(self, account: ServiceAccount) -> str:
        days = (account.rotation_due_at - timezone.now()).days
        due = account.rotation_due_at.strftime("%Y-%m-%d")
        if days < 0:
            return format_html(
                '<strong class="rotation-overdue" style="color:#ba2121">{} — overdue by {} d</strong>',
                due,
                -days,
            )
        return format_html('<span class="rotation-clock">{} — {} d left</span>', due, days)

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        return services.service_account_create(
            actor=request.user,
            integration=data["integration"],
            name=data["name"],
            scopes=list(data["scopes"]),
            rotation_period_days=data["rotation_period_days"],
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:account_id>/token/", view(self.token_view), name="workflows_serviceaccount_token"),
            path(
                "<int:account_id>/disable/", view(self.disable_view), name="workflows_serviceaccount_disable"
            ),
            path(
                "<int:account_id>/reactivate/",
                view(self.reactivate_view),
                name="workflows_serviceaccount_reactivate",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if account is not None:
            context["can_reactivate"] = decide(request.user, "service_account.reactivate", account).allowed
        return super().change_view(request, object_id, form_url, context)

    def _account(self, request, account_id: int) -> ServiceAccount:
        """The account, for the pages of its actions: refused (403) to those who may not see
        service accounts at all, missing (404) when it is not one the user may see, exactly as
        its change page (the account's own permission, from the decision point)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        account = get_object_or_404(self.get_queryset(request).select_related("workspace"), pk=account_id)
        if not self.has_view_permission(request, account):
            raise PermissionDenied
        return account

    def _page(self, request, account, template: str, title: str, **extra):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "account": account,
            "opts": self.model._meta,
            **extra,
        }
        return TemplateResponse(request, f"admin/workflows/serviceaccount/{template}", context)

    def token_view(self, request, account_id: int):
        """Confirm, then issue a token and show its plaintext this once (nothing keeps it)."""
        account = self._account(request, account_id)
        if request.method != "POST":
            return self._page(request, account, "token_confirm.html", f"Issue a new token for {account}")
        issued = services.service_account_token_issue(actor=request.user, account=account)
        response = self._page(
            request, account, "token_issued.html", f"New token for {account}", issued=issued
        )
        response["Cache-Control"] = "no-store"
        return response

    def disable_view(self, request, account_id: int):
        account = self._account(request, account_id)
        form = ServiceAccountDisableForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            done = self._call(
                form,
                services.service_account_disable,
                actor=request.user,
                account=account,
                reason=data["reason"],
                note=data["note"],
            )
            if done:
                messages.success(request, f"{account} is disabled.")
                return HttpResponseRedirect(
                    reverse("admin:workflows_serviceaccount_change", args=[account.pk])
                )
        return self._page(request, account, "action.html", f"Disable {account}", form=form)

    def reactivate_view(self, request, account_id: int):
        """For those who may see the account; reactivating it is for its workspace's owners only,
        and the service refuses anyone else with a 403 that it records."""
        account = self._account(request, account_id)
        form = ServiceAccountNoteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            done = self._call(
                form,
                services.service_account_reactivate,
                actor=request.user,
                account=account,
                note=form.cleaned_data["note"],
            )
            if done:
                messages.success(request, f"{account} is active again.")
                return HttpResponseRedirect(
                    reverse("admin:workflows_serviceaccount_change", args=[account.pk])
                )
        return self._page(request, account, "action.html", f"Reactivate {account}", form=form)

    @staticmethod
    def _call(form, service, **kwargs) -> bool:
        try:
            service(**kwargs)
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
            return False
        return True


posture.register()  # the app's rows of the control panel's posture table
