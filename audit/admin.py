"""The ledger in the control panel: read-only for everyone, fast to search at millions of events.

- Counts are capped (``CappedPaginator``): no exact COUNT(*) over big sets.
- Rows are ordered by id, an index walk; beyond the first pages, "older events" continues
  with a keyset cursor (``before=<id>``) instead of a deep OFFSET.
- Extra filters (actor, action, workspace, time range) are parsed by a form: a malformed value
  is reported and ignored, never a server error.
"""

from __future__ import annotations

import json
from functools import cached_property

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from audit import canonical, posture
from audit.events import known_codes
from audit.evidence.links import evidence_link_issue
from audit.evidence.orders import ACTION, evidence_order_create, evidence_order_period_errors
from audit.models import AuditEvent, EvidenceOrder, EvidenceOrderState
from audit.proofs import event_inclusion
from audit.search import search_events
from audit.services import denials_record
from audit.signing import key_id_of, load_signing_key, public_key_pem
from governance.access.admin_base import ActorFormMixin, GovernedModelAdmin, ReadOnlyModelAdmin
from governance.access.decision import decide
from governance.access.queries import restrict
from governance.tenancy.models import Workspace
from governance.tenancy.selectors import workspaces_visible_to

COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """Counts at most ``COUNT_CAP + 1`` rows; past that the page says "more than 10,000"."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()


class EventFilterForm(forms.Form):
    """The ledger's extra filters, from the query string."""

    actor = forms.CharField(required=False, max_length=254, label="Actor (e-mail or 'system')")
    action = forms.CharField(
        required=False, max_length=100, help_text="A code, or a prefix such as workflow."
    )
    workspace = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    since = forms.DateTimeField(required=False, label="From")
    until = forms.DateTimeField(required=False, label="To")
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    FIELDS = ("actor", "action", "workspace", "since", "until", "before")

    def __init__(self, *args, workspaces=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspace"].choices = [
            ("", "All visible workspaces"),
            *((w.pk, w.name) for w in workspaces),
        ]

    def clean_action(self) -> str:
        action = self.cleaned_data["action"].strip()
        if action and not action.endswith(".") and action not in known_codes():
            raise forms.ValidationError(f"{action!r} is not an event code (end with '.' to match a prefix).")
        return action

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end of the range is before its start.")
        return cleaned

    def apply(self, queryset: QuerySet) -> QuerySet:
        data = {name: self.cleaned_data.get(name) for name in self.FIELDS if name not in self.errors}
        if data.get("actor"):
            queryset = queryset.filter(actor_label=data["actor"].strip().lower())
        if data.get("action"):
            action = data["action"]
            queryset = (
                queryset.filter(action__startswith=action)
                if action.endswith(".")
                else queryset.filter(action=action)
            )
        if data.get("workspace"):
            queryset = queryset.filter(workspace_id=data["workspace"])
        if data.get("since"):
            queryset = queryset.filter(occurred_at__gte=data["since"])
        if data.get("until"):
            queryset = queryset.filter(occurred_at__lte=data["until"])
        if data.get("before"):
            queryset = queryset.filter(id__lt=data["before"])
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    list_display = [
        "sequence_or_pending",
        "occurred_at",
        "action",
        "outcome",
        "actor_label",
        "workspace_name",
        "target_label",
    ]
    list_display_links = ["sequence_or_pending", "action"]
    list_filter = ["category", "outcome"]
    list_select_related = ["workspace"]
    search_fields = ["action"]  # enables the search box; the search itself is search_events
    search_help_text = "Full text over action, actor, target and data, e.g. membership -viewer"
    ordering = ["-id"]
    show_full_result_count = False
    list_per_page = 100
    list_max_show_all = 100
    paginator = CappedPaginator
    change_list_template = "admin/audit/auditevent/change_list.html"
    change_form_template = "admin/audit/auditevent/change_form.html"
    fields = [
        "sequence",
        "occurred_at",
        "category",
        "action",
        "outcome",
        "actor_type",
        "actor_label",
        "organization",
        "workspace",
        "target_type",
        "target_id",
        "target_label",
        "request_id",
        "ip",
        "user_agent",
    ]
    readonly_fields = fields

    @admin.display(description="sequence", ordering="id")
    def sequence_or_pending(self, event: AuditEvent) -> str:
        return str(event.sequence) if event.sequence is not None else "pending"

    @admin.display(description="workspace")
    def workspace_name(self, event: AuditEvent) -> str:
        return event.workspace.name if event.workspace_id and event.workspace else ""

    def get_search_results(self, request, queryset, search_term):
        return search_events(queryset, search_term), False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        filters = getattr(request, "ledger_filters", None)
        return filters.apply(queryset) if filters is not None else queryset

    def changelist_view(self, request, extra_context=None):
        # Our own parameters are taken out of the query string before Django's changelist
        # validates it (it would reject unknown names); invalid values are reported and ignored.
        params = request.GET.copy()
        own = {name: params.pop(name)[-1] for name in EventFilterForm.FIELDS if name in params}
        request.GET = params
        workspaces = list(workspaces_visible_to(request.user).select_related(None).only("pk", "name"))
        form = EventFilterForm(own, workspaces=workspaces)
        form.is_valid()
        for name, errors in form.errors.items():
            messages.error(request, f"Filter {form.fields[name].label or name} ignored: {' '.join(errors)}")
        request.ledger_filters = form
        context = {
            "filter_form": form,
            "ledger_key": _public_key_context(),
            "count_cap": COUNT_CAP,
            **(extra_context or {}),
        }
        response = super().changelist_view(request, context)
        if hasattr(response, "context_data") and "cl" in response.context_data:
            response.context_data["older_url"] = _older_url(request, response.context_data["cl"], own)
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        event = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if event is not None and self.has_view_permission(request, event):
            document = canonical.parse(bytes(event.canonical))
            context.update(
                document=json.dumps(document, indent=2, sort_keys=True),
                diff=_diff_rows(document.get("data") or {}),
                inclusion=event_inclusion(event),
                ledger_key=_public_key_context(),
                leaf_hash=bytes(event.leaf_hash).hex() if event.leaf_hash else "",
                chain_hash=bytes(event.chain_hash).hex() if event.chain_hash else "",
            )
        return super().change_view(request, object_id, form_url, context)


def _older_url(request, changelist, own: dict) -> str | None:
    """Keyset link to the page of events older than the last one shown."""
    rows = list(changelist.result_list)
    if len(rows) < changelist.list_per_page:
        return None
    query = request.GET.copy()
    for name, value in own.items():
        if name != "before":
            query[name] = value
    query["before"] = str(rows[-1].pk)
    query.pop("p", None)
    return "?" + query.urlencode()


def _diff_rows(data: dict) -> list[tuple[str, str, str]]:
    """(field, before, after) rows from an event's ``diff`` or ``before``/``after`` data."""

    def show(value) -> str:
        return (
            "—" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        )

    if isinstance(data.get("diff"), dict):
        return [
            (name, show(change.get("before")), show(change.get("after")))
            for name, change in sorted(data["diff"].items())
            if isinstance(change, dict)
        ]
    before, after = data.get("before"), data.get("after")
    if isinstance(before, dict) or isinstance(after, dict):
        before, after = before or {}, after or {}
        return [
            (name, show(before.get(name)), show(after.get(name)))
            for name in sorted(set(before) | set(after))
            if before.get(name) != after.get(name)
        ]
    return []


def _public_key_context() -> dict[str, str]:
    public = load_signing_key().public_key()
    return {"key_id": key_id_of(public), "pem": public_key_pem(public)}


class EvidenceOrderForm(forms.ModelForm):
    """An auditor's order: one workspace among those assigned to them, a period of whole UTC days.

    The workspace field offers only the workspaces where the actor may order evidence; a posted
    value outside them (a forged form) is refused with a field error and the refusal recorded.
    """

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
        field = self.fields.get("workspace")
        if field is None:
            return
        # Validation looks a posted id up among all workspaces, so that a forged one reaches the
        # decision point (and the ledger) instead of failing as a mere "invalid choice".
        field.queryset = Workspace.objects.select_related("organization")
        offered = [
            ws
            for ws in restrict(Workspace.objects.order_by("name"), actor, ACTION)
            if decide(actor, ACTION, ws).allowed
        ]
        field.choices = [("", "---------"), *((ws.pk, ws.name) for ws in offered)]
        field.error_messages["required"] = "Choose the workspace the package is for."
        field.help_text = (
            "One workspace per package: the workspaces where you are assigned as auditor."
            if offered
            else "You are assigned to no workspace where you may order evidence."
        )

    def clean_workspace(self):
        workspace = self.cleaned_data["workspace"]
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
    "progress_done",
    "progress_total",
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


posture.register()  # the app's rows of the control panel's posture table
