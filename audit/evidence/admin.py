"""Evidence orders in the control panel: order a package of a workspace and period, watch its
build, download it through a signed link (docs/evidence.md)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from audit.evidence.links import evidence_link_issue
from audit.evidence.orders import (
    ACTION,
    ORGANIZATION_ACTION,
    evidence_order_create,
    evidence_order_decision,
    evidence_order_period_errors,
)
from audit.models import EvidenceOrder, EvidenceOrderState
from audit.services import denials_record
from governance.access.actions import ACTIONS
from governance.access.admin_base import ActorFormMixin, GovernedModelAdmin
from governance.access.decision import decide, list_reach
from governance.access.queries import restrict
from governance.tenancy.models import Workspace

ORGANIZATION_CHOICE = "organization"


class EvidenceOrderForm(forms.ModelForm):
    """An auditor's order: one workspace among those assigned to them (or, for an organisation
    auditor, the organisation's own events), a period of whole UTC days.

    The workspace field offers only the scopes where the actor may order evidence; a posted
    value outside them (a forged form) is refused with a field error and the refusal recorded.
    """

    # Any value reaches clean_workspace, so that a forged one meets the decision point (and the
    # ledger) instead of failing as a mere "invalid choice".
    workspace = forms.CharField(label="Scope", widget=forms.Select)

    class Meta:
        model = EvidenceOrder
        fields = ["workspace", "period_start", "period_end", "framework"]
        help_texts = {
            "period_start": "First day (UTC).",
            "period_end": "Last day (UTC), included; today at the latest (the package then covers up to the order).",
            "framework": "Optional; recorded in the package's manifest.",
        }

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.organization = None
        field = self.fields.get("workspace")
        if field is None:
            return
        offered = [
            (str(ws.pk), ws.name)
            for ws in restrict(Workspace.objects.order_by("name"), actor, ACTION)
            if decide(actor, ACTION, ws).allowed
        ]
        # Whether to offer the organisation: the roles alone, as lists decide (an offer is not an
        # attempt, so nothing is recorded; the choice, once posted, meets the decision point).
        if list_reach(actor, ACTIONS[ORGANIZATION_ACTION]).organization:
            offered.append(
                (ORGANIZATION_CHOICE, "The organisation's own events (sign-ins, accounts, SSO, SCIM)")
            )
        field.widget.choices = [("", "---------"), *offered]
        field.error_messages["required"] = "Choose the workspace the package is for."
        field.help_text = (
            "One scope per package: a workspace where you are assigned as auditor, or the organisation's "
            "own events when you are its organisation auditor."
            if offered
            else "You are assigned to no workspace where you may order evidence."
        )

    def clean_workspace(self):
        value = self.cleaned_data["workspace"].strip()
        if value == ORGANIZATION_CHOICE:
            self.organization = self.actor.organization
            decision = evidence_order_decision(self.actor, workspace=None, organization=self.organization)
            if not decision.allowed:
                denials_record(decisions=[decision])
                raise forms.ValidationError(
                    "You may not order the organisation's own events: that is for its organisation "
                    "auditors. The refusal has been recorded in the ledger."
                )
            return None
        workspace = (
            Workspace.objects.select_related("organization").filter(pk=int(value)).first()
            if value.isascii() and value.isdigit() and len(value) < 19
            else None
        )
        if workspace is None:
            raise forms.ValidationError("Choose one of the scopes listed.")
        decision = decide(self.actor, ACTION, workspace)
        if not decision.allowed:
            denials_record(decisions=[decision])  # a refused sensitive action is always recorded
            raise forms.ValidationError(
                "This workspace is outside your assignment: you may order evidence only for the workspaces "
                "listed. The refusal has been recorded in the ledger."
            )
        return workspace

    def clean(self):
        cleaned = super().clean()
        errors = evidence_order_period_errors(
            period_start=cleaned.get("period_start"), period_end=cleaned.get("period_end")
        )
        for name, message in errors.items():
            if name not in self.errors:
                self.add_error(name, message)
        return cleaned


REFRESH_SECONDS = 3
ORDER_FIELDS = [
    "workspace",
    "period_start",
    "period_end",
    "framework",
    "state",
    "phase",
    "progress",
    "attempts",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "expires_at",
    "file_size",
    "file_sha256",
    "manifest_sha256",
]


@admin.register(EvidenceOrder)
class EvidenceOrderAdmin(ActorFormMixin, GovernedModelAdmin):
    """The auditor's evidence orders: ordered here, built by a worker, downloaded from a personal link.

    Everyone sees only their own orders; nobody edits or deletes one (it expires).
    """

    form = EvidenceOrderForm
    list_display = ["__str__", "framework", "status", "created_at", "download"]
    list_display_links = ["__str__"]
    list_filter = ["state"]
    list_select_related = ["workspace", "requester"]
    ordering = ["-id"]
    change_list_template = "admin/audit/evidenceorder/change_list.html"
    change_form_template = "admin/audit/evidenceorder/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(requester_id=request.user.pk)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "workspace":  # a plain list: no buttons to add or edit workspaces
            return db_field.formfield(**kwargs)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        return EvidenceOrderForm.Meta.fields if obj is None else ORDER_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ORDER_FIELDS

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) and (
            obj is None or obj.requester_id == request.user.pk
        )

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="status")
    def status(self, order: EvidenceOrder) -> str:
        if order.in_progress:
            phase = f", {order.phase}" if order.phase else ""
            return f"{order.get_state_display()} {order.percent}%{phase}"
        if order.state == EvidenceOrderState.FAILED:
            return f"Failed: {order.error[:120]}"
        return order.get_state_display()

    @admin.display(description="progress")
    def progress(self, order: EvidenceOrder) -> str:
        """The build's progress in words ("40 of 100 steps, 40%"), not two bare counters."""
        if not order.progress_total:
            return "—" if order.in_progress else f"{order.percent}%"
        return f"{order.progress_done:,} of {order.progress_total:,} steps, {order.percent}%"

    @admin.display(description="package")
    def download(self, order: EvidenceOrder) -> str:
        if order.state != EvidenceOrderState.READY:
            return "—"
        # Only one's own orders are listed, so the link is issued to the viewer.
        url = evidence_link_issue(order=order, user=order.requester)
        return format_html('<a href="{}">Download</a> ({})', url, filesizeformat(order.file_size or 0))

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        # An assignment withdrawn between the form and the save raises AccessDenied: a 403 page,
        # and the middleware records the denial once this transaction has rolled back.
        return evidence_order_create(
            actor=request.user,
            workspace=data["workspace"],
            organization=form.organization,
            period_start=data["period_start"],
            period_end=data["period_end"],
            framework=data.get("framework") or "",
        )

    def changelist_view(self, request, extra_context=None):
        building = self.get_queryset(request).filter(
            state__in=[EvidenceOrderState.QUEUED, EvidenceOrderState.BUILDING]
        )
        context = {
            "refresh_seconds": REFRESH_SECONDS if building.exists() else 0,
            **_ttl_context(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if order is not None and self.has_view_permission(request, order):
            context.update(
                order=order, refresh_seconds=REFRESH_SECONDS if order.in_progress else 0, **_ttl_context()
            )
            if order.state == EvidenceOrderState.READY:
                context["download_url"] = evidence_link_issue(order=order, user=request.user)
        return super().change_view(request, object_id, form_url, context)


def _ttl_context() -> dict[str, int]:
    return {"link_ttl_hours": max(1, settings.EVIDENCE_LINK_TTL_SECONDS // 3600)}
