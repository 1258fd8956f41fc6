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
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import QuerySet

from audit import canonical, posture
from audit.events import known_codes
from audit.models import AuditEvent
from audit.proofs import event_inclusion
from audit.search import search_events
from audit.signing import key_id_of, load_signing_key, public_key_pem
from governance.access.admin_base import ReadOnlyModelAdmin
from governance.access.decision import decide
from governance.tenancy.selectors import workspaces_visible_to

COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """Counts at most ``COUNT_CAP + 1`` rows; past that the page says "more than 10,000"."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()


ORGANIZATION = "organization"  # the workspace filter's value for the organisation's own events


class EventFilterForm(forms.Form):
    """The ledger's extra filters, from the query string."""

    actor = forms.CharField(required=False, max_length=254, label="Actor (e-mail or 'system')")
    action = forms.CharField(
        required=False, max_length=100, help_text="A code, or a prefix such as workflow."
    )
    workspace = forms.TypedChoiceField(
        required=False, coerce=lambda value: value if value == ORGANIZATION else int(value), empty_value=None
    )
    since = forms.DateTimeField(required=False, label="From")
    until = forms.DateTimeField(required=False, label="To")
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    FIELDS = ("actor", "action", "workspace", "since", "until", "before")

    def __init__(self, *args, workspaces=(), organization_events=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspace"].choices = [
            ("", "Everything you may see"),
            *([(ORGANIZATION, "The organisation's own events")] if organization_events else []),
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
        if data.get("workspace") == ORGANIZATION:
            queryset = queryset.filter(workspace_id__isnull=True)
        elif data.get("workspace"):
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
        if event.workspace_id and event.workspace:
            return event.workspace.name
        return "(organisation)" if event.organization_id else ""

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
        organization_events = decide(
            request.user, "audit.view_organization", request.user.organization
        ).allowed
        form = EventFilterForm(own, workspaces=workspaces, organization_events=organization_events)
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


posture.register()  # the app's rows of the control panel's posture table

from audit.retention import admin as retention_admin  # noqa: E402, F401  (registers the retention pages)
