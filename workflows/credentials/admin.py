"""The control panel's credentials: write-only. A value goes in through a password field and
never comes back: the pages show fingerprints, versions, rotation dates and who rotated.

The credentials live in the secrets database, so the visibility filter is computed per
workspace in the main database (``credentials_visible_to``) rather than with a join.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from governance.access.admin_base import ActorFormMixin, GovernedModelAdmin, ReadOnlyInlineMixin
from governance.access.decision import decide
from governance.access.queries import restrict
from governance.tenancy.models import Workspace
from workflows.credentials import selectors, services
from workflows.credentials.models import (
    STORE,
    Credential,
    CredentialRunbook,
    CredentialStatus,
    CredentialVersion,
)
from workflows.integrations.models import Integration

_VALUE_WIDGET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class CredentialAddForm(forms.ModelForm):
    integration = forms.ModelChoiceField(queryset=Integration.objects.none())
    value = forms.CharField(
        widget=_VALUE_WIDGET, strip=False, help_text="Write-only: it is never shown again."
    )

    class Meta:
        model = Credential
        fields = ["name"]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.fields["integration"].queryset = restrict(
            Integration.objects.select_related("workspace"), actor, "credential.manage"
        )


class CredentialRotateForm(forms.ModelForm):
    new_value = forms.CharField(
        widget=_VALUE_WIDGET,
        strip=False,
        required=False,
        help_text="Stage a new value (write-only). It is used once promoted; the previous value stays valid "
        "for the grace period so that running executions finish with it.",
    )
    promote = forms.BooleanField(required=False, help_text="Promote the new value at once.")

    class Meta:
        model = Credential
        fields = []

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor


class CredentialVersionInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = CredentialVersion
    fields = readonly_fields = (
        "number",
        "status",
        "fingerprint",
        "created_at",
        "tested_at",
        "test_ok",
        "promoted_at",
        "grace_until",
        "revoked_at",
    )
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).using(STORE).defer("value")

    def has_view_permission(self, request, obj=None) -> bool:
        return decide(request.user, "credential.manage").allowed  # the credential itself was checked


@admin.register(Credential)
class CredentialAdmin(GovernedModelAdmin):
    list_display = ("name", "integration_name", "fingerprint", "last_rotation", "rotation_required")
    list_filter = ("rotation_required",)
    search_fields = ("name",)
    inlines = [CredentialVersionInline]

    def get_queryset(self, request):
        return selectors.credentials_visible_to(request.user)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def _integration(self, obj):
        if not hasattr(obj, "_integration"):
            obj._integration = (
                Integration.objects.select_related("workspace").filter(pk=obj.integration_id).first()
            )
        return obj._integration

    def has_module_permission(self, request) -> bool:
        return decide(request.user, "credential.manage").allowed

    def has_view_permission(self, request, obj=None) -> bool:
        target = self._integration(obj) if obj is not None else None
        return decide(request.user, "credential.manage", target).allowed

    has_change_permission = has_view_permission

    def has_add_permission(self, request) -> bool:
        return decide(request.user, "credential.manage").allowed

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = CredentialRotateForm if obj is not None else CredentialAddForm

        class BoundForm(base):
            def __init__(self, *args, **form_kwargs):
                super().__init__(*args, actor=request.user, **form_kwargs)

        return BoundForm

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["integration", "name", "value"]})]
        return [(None, {"fields": ["new_value", "promote"]})]

    @admin.display(description="integration")
    def integration_name(self, obj) -> str:
        integration = self._integration(obj)
        return (
            f"{integration.workspace.slug} / {integration.name}" if integration else f"#{obj.integration_id}"
        )

    def _active(self, obj):
        return obj.versions.using(STORE).filter(status=CredentialStatus.ACTIVE).defer("value").first()

    @admin.display(description="active fingerprint")
    def fingerprint(self, obj) -> str:
        version = self._active(obj)
        return version.fingerprint if version else "—"

    @admin.display(description="last rotation")
    def last_rotation(self, obj):
        version = self._active(obj)
        return version.promoted_at if version else None

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            created = services.credential_create(
                actor=request.user,
                integration=form.cleaned_data["integration"],
                name=form.cleaned_data["name"],
                value=form.cleaned_data["value"],
            )
            obj.pk, obj.workspace_id, obj.integration_id = (
                created.pk,
                created.workspace_id,
                created.integration_id,
            )
            obj._state.adding, obj._state.db = False, STORE
            return
        new_value = form.cleaned_data.get("new_value")
        if new_value:
            version = services.credential_stage(actor=request.user, credential=obj, value=new_value)
            if form.cleaned_data.get("promote"):
                services.credential_promote(actor=request.user, version=version)

    def save_related(self, request, form, formsets, change) -> None:
        """The versions are written by the services only."""

    def log_addition(self, request, obj, message):
        return None  # the ledger records it; the admin's own log would hold the object's repr only

    log_change = log_addition

    def construct_change_message(self, request, form, formsets, add=False):
        return []

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as error:
            for text in error.messages:
                messages.error(request, text)
            return HttpResponseRedirect(request.get_full_path())

    def response_add(self, request, obj, post_url_continue=None):
        messages.success(request, f"Credential {obj.name} stored. Its value will not be shown again.")
        return HttpResponseRedirect(reverse("admin:workflows_credential_changelist"))


class RunbookForm(forms.ModelForm):
    class Meta:
        model = CredentialRunbook
        fields = ["workspace", "reason"]
        help_texts = {"reason": "The incident, in a sentence; it goes into the ledger and the report."}

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        if "workspace" in self.fields:  # the add form; a started runbook is read-only
            self.fields["workspace"].queryset = restrict(
                Workspace.objects.all(), actor, "credential.rotate_all"
            )


@admin.register(CredentialRunbook)
class CredentialRunbookAdmin(ActorFormMixin, GovernedModelAdmin):
    """ "Rotate every credential of this workspace": start it here, follow its progress and report."""

    form = RunbookForm
    list_display = ("__str__", "status", "progress", "started_by", "finished_at")
    list_filter = ("status",)

    def get_fields(self, request, obj=None):
        return (
            ["workspace", "reason"]
            if obj is None
            else [
                "workspace",
                "reason",
                "status",
                "progress",
                "started_by",
                "started_at",
                "finished_at",
                "report_table",
            ]
        )

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    @admin.display(description="progress")
    def progress(self, runbook) -> str:
        return format_html(
            '<progress max="100" value="{}"></progress> {}% ({} of {})',
            runbook.percent,
            runbook.percent,
            runbook.done,
            runbook.total,
        )

    @admin.display(description="report")
    def report_table(self, runbook) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((i["kind"], i["name"], i["done"], i["next"]) for i in runbook.report),
        )
        return format_html(
            "<table><tr><th>kind</th><th>what</th><th>done</th><th>next step</th></tr>{}</table>", rows
        )

    def service_save(self, request, obj, form, change):
        return services.credential_runbook_start(
            actor=request.user, workspace=form.cleaned_data["workspace"], reason=form.cleaned_data["reason"]
        )
