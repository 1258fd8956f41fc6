"""The incident stop in the control panel: the halts list, *Halt executions* (a workspace, or the
whole organisation) and *Release* (a second person), each with a reason."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from governance.access.admin_base import ReadOnlyModelAdmin
from governance.access.decision import AccessDenied, decide
from governance.access.queries import restrict
from governance.core.text import MAX_REASON_CHARS
from governance.tenancy.models import Organization, Workspace
from workflows.executions import halts, posture
from workflows.executions.models import Halt

WHOLE_ORGANISATION = "organization"


class RaiseForm(forms.Form):
    where = forms.ChoiceField(label="Halt every execution of")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=MAX_REASON_CHARS,
        help_text="Required: the incident, and what must happen before the halt is released.",
    )

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["where"].choices = choices


class ReleaseForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=MAX_REASON_CHARS,
        help_text="Required: why it is safe to go on. Halted runs stay halted until an operator resumes them.",
    )


@admin.register(Halt)
class HaltAdmin(ReadOnlyModelAdmin):
    list_display = ["__str__", "state", "reason", "raised_by", "raised_at", "released_by", "released_at"]
    list_select_related = ["workspace", "raised_by", "released_by"]
    fields = [
        "scope",
        "workspace",
        "reason",
        "raised_by",
        "raised_at",
        "released_by",
        "released_at",
        "release_reason",
    ]
    readonly_fields = fields
    change_list_template = "admin/workflows/halt/change_list.html"
    change_form_template = "admin/workflows/halt/change_form.html"

    @admin.display(description="state", ordering="released_at")
    def state(self, halt: Halt) -> str:
        return "In force" if halt.active else "Released"

    def get_urls(self):
        return [
            path("raise/", self.admin_site.admin_view(self.raise_view), name="workflows_halt_raise"),
            path(
                "<int:halt_id>/release/",
                self.admin_site.admin_view(self.release_view),
                name="workflows_halt_release",
            ),
            *super().get_urls(),
        ]

    def _where_choices(self, request) -> list[tuple[str, str]]:
        user = request.user
        choices = [
            (str(workspace.pk), f"Workspace {workspace.name}")
            for workspace in restrict(Workspace.objects.order_by("name"), user, "execution.halt")
        ]
        organization = Organization.objects.filter(pk=getattr(user, "organization_id", None)).first()
        if organization is not None and decide(user, "organization.halt", organization).allowed:
            choices.append((WHOLE_ORGANISATION, f"The whole organisation ({organization.name})"))
        return choices

    def changelist_view(self, request, extra_context=None):
        context = {**(extra_context or {}), "can_raise": bool(self._where_choices(request))}
        return super().changelist_view(request, context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        halt = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if halt is not None and halt.active:
            context["can_release"] = halt.raised_by_id != request.user.pk and self._may_release(request, halt)
            context["raised_by_me"] = halt.raised_by_id == request.user.pk
        return super().change_view(request, object_id, form_url, context)

    @staticmethod
    def _may_release(request, halt: Halt) -> bool:
        if halt.workspace_id is not None:
            return decide(request.user, "execution.halt", halt.workspace).allowed
        return decide(request.user, "organization.halt", halt.organization).allowed

    def _page(self, request, template: str, title: str, **context):
        return TemplateResponse(
            request,
            template,
            {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta, **context},
        )

    def raise_view(self, request):
        choices = self._where_choices(request)
        if not choices:
            raise PermissionDenied("You may not halt executions anywhere.")
        form = RaiseForm(request.POST or None, choices=[("", "Choose…"), *choices])
        if request.method == "POST" and form.is_valid():
            where = form.cleaned_data["where"]
            target = (
                {"organization": Organization.objects.get(pk=request.user.organization_id)}
                if where == WHOLE_ORGANISATION
                else {"workspace": Workspace.objects.get(pk=int(where))}
            )
            try:
                halt = halts.halt_raise(actor=request.user, reason=form.cleaned_data["reason"], **target)
            except AccessDenied as refusal:
                form.add_error("where", str(refusal))
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(
                        "where" if field == "scope" else field if field in form.fields else None, errors
                    )
            else:
                messages.success(
                    request, f"{halt}: no step starts from now on; running steps halt at their end."
                )
                return HttpResponseRedirect(reverse("admin:workflows_halt_change", args=[halt.pk]))
        return self._page(request, "admin/workflows/halt/raise.html", "Halt executions", form=form)

    def release_view(self, request, halt_id: int):
        halt = get_object_or_404(self.get_queryset(request), pk=halt_id)
        if not self._may_release(request, halt):
            raise PermissionDenied("You may not release this halt.")
        form = ReleaseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                halts.halt_release(actor=request.user, halt=halt, reason=form.cleaned_data["reason"])
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, f"{halt} released. Operators may now resume the halted runs.")
                return HttpResponseRedirect(reverse("admin:workflows_halt_change", args=[halt.pk]))
        return self._page(
            request, "admin/workflows/halt/release.html", f"Release: {halt}", form=form, halt=halt
        )


posture.register()  # the control panel's rows about runs (halts, approvals, the last 24 hours)
