"""Key status in the control panel: which provider holds each KEK, which version is active, when
keys were rotated, and rotation jobs with their progress. Rotating a data key and bringing a
workspace's own key (BYOK) are forms that call the services; key material is never shown."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from governance.access.admin_base import ReadOnlyModelAdmin
from governance.access.decision import AccessDenied, decide
from governance.access.queries import restrict
from governance.crypto import services
from governance.crypto.models import DataKey, DataKeyStatus, KeyEncryptionKey, Provider, RotationJob
from governance.crypto.selectors import values_under
from governance.tenancy.models import Workspace


def _with_platform_keys(request, queryset, restricted):
    """Platform keys belong to no workspace: platform administrators see them too."""
    if decide(request.user, "organization.view").allowed:
        return restricted | queryset.filter(workspace__isnull=True)
    return restricted


@admin.register(KeyEncryptionKey)
class KeyEncryptionKeyAdmin(ReadOnlyModelAdmin):
    list_display = ("owner", "version", "provider", "key_ref", "origin", "status", "created_at", "retired_at")
    list_filter = ("status", "provider", "origin")

    def get_queryset(self, request):
        base = KeyEncryptionKey.objects.select_related("workspace")
        return _with_platform_keys(request, base, super().get_queryset(request))

    def has_view_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.workspace_id is None:
            return decide(request.user, "organization.view").allowed
        return super().has_view_permission(request, obj)

    @admin.display(description="owner")
    def owner(self, kek) -> str:
        return kek.workspace.slug if kek.workspace_id else "platform"

    def get_urls(self):
        own = [path("byok/", self.admin_site.admin_view(self.byok_view), name="crypto_keyencryptionkey_byok")]
        return own + super().get_urls()

    def byok_view(self, request):
        workspaces = restrict(Workspace.objects.all(), request.user, "key.manage")
        if not workspaces.exists():
            raise PermissionDenied
        form = ByokForm(request.POST or None, workspaces=workspaces)
        if request.method == "POST" and form.is_valid():
            try:
                kek = services.workspace_key_configure(actor=request.user, **form.service_arguments())
            except ValidationError as error:
                _add_errors(form, error)
            except AccessDenied as denied:
                raise PermissionDenied(str(denied)) from None
            else:
                messages.success(
                    request,
                    f"{kek.workspace.slug} now uses its own key (v{kek.version}, {kek.get_origin_display().lower()}).",
                )
                return HttpResponseRedirect(reverse("admin:crypto_keyencryptionkey_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Bring your own key",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/crypto/byok.html", context)


class ByokForm(forms.Form):
    workspace = forms.ModelChoiceField(queryset=Workspace.objects.none())
    provider = forms.ChoiceField(choices=Provider.choices)
    key_label = forms.CharField(
        required=False,
        max_length=128,
        help_text="An existing AES-256 key on the HSM, by label (leave empty to import).",
    )
    token_label = forms.CharField(
        required=False, max_length=64, help_text="The HSM token, when not the default."
    )
    material_b64 = forms.CharField(
        required=False,
        label="Key material (base64)",
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="32 random bytes in base64, to import. It goes into the key provider, never into the database.",
    )

    def __init__(self, *args, workspaces, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspace"].queryset = workspaces

    def service_arguments(self) -> dict:
        return {
            name: self.cleaned_data[name]
            for name in ("workspace", "provider", "key_label", "token_label", "material_b64")
        }


def _add_errors(form: forms.Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, problems in error.message_dict.items():
            form.add_error(field if field in form.fields else None, problems)
    else:
        form.add_error(None, error.messages)


@admin.register(DataKey)
class DataKeyAdmin(ReadOnlyModelAdmin):
    list_display = (
        "owner",
        "purpose",
        "version",
        "status",
        "kek_version",
        "created_at",
        "retired_at",
        "rotate",
    )
    list_filter = ("purpose", "status")
    exclude = ("wrapped",)

    def get_queryset(self, request):
        base = DataKey.objects.select_related("workspace", "kek").exclude(purpose="subject")
        restricted = (
            super().get_queryset(request).select_related("workspace", "kek").exclude(purpose="subject")
        )
        return _with_platform_keys(request, base, restricted)

    @admin.display(description="owner")
    def owner(self, data_key) -> str:
        return data_key.workspace.slug if data_key.workspace_id else "platform"

    @admin.display(description="KEK")
    def kek_version(self, data_key) -> str:
        return f"v{data_key.kek.version} ({data_key.kek.provider})"

    @admin.display(description="")
    def rotate(self, data_key) -> str:
        if data_key.status != DataKeyStatus.ACTIVE or data_key.workspace_id is None:
            return ""
        url = reverse("admin:crypto_datakey_rotate", args=[data_key.pk])
        return format_html('<a href="{}">Rotate…</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.rotate_view)
        return [path("<int:key_id>/rotate/", view, name="crypto_datakey_rotate"), *super().get_urls()]

    def rotate_view(self, request, key_id):
        data_key = get_object_or_404(self.get_queryset(request), pk=key_id, status=DataKeyStatus.ACTIVE)
        if not decide(request.user, "key.manage", data_key.workspace).allowed:
            raise PermissionDenied
        if request.method == "POST":
            try:
                job = services.data_key_rotate(
                    actor=request.user, workspace=data_key.workspace, purpose=data_key.purpose
                )
            except ValidationError as error:
                for text in error.messages:
                    messages.error(request, text)
                return HttpResponseRedirect(request.path)
            messages.success(
                request, "Rotation started: new values use the new key now; the job moves the rest."
            )
            return HttpResponseRedirect(reverse("admin:crypto_rotationjob_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Rotate {data_key}",
            "data_key": data_key,
            "values": values_under(data_key),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/crypto/rotate.html", context)


@admin.register(RotationJob)
class RotationJobAdmin(ReadOnlyModelAdmin):
    list_display = ("__str__", "status", "progress", "failed", "started_at", "finished_at")
    list_filter = ("status",)
    readonly_fields = (
        "from_key",
        "to_key",
        "status",
        "progress",
        "total",
        "done",
        "failed",
        "message",
        "started_by",
        "started_at",
        "finished_at",
    )
    fields = readonly_fields

    @admin.display(description="progress")
    def progress(self, job) -> str:
        return format_html(
            '<progress max="100" value="{}"></progress> {}% ({} of {})',
            job.percent,
            job.percent,
            job.done,
            job.total,
        )
