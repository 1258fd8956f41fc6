"""The ledger in the control panel: read-only for everyone."""

from __future__ import annotations

from django.contrib import admin

from audit.models import AuditEvent
from governance.admin_site import ReadOnlyModelAdmin, site


@admin.register(AuditEvent, site=site)
class AuditEventAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "occurred_at", "action", "outcome", "actor_label", "workspace", "target_label"]
    list_filter = ["category", "outcome"]
    list_select_related = ["workspace"]
    search_fields = ["action", "target_label", "actor_label"]
    show_full_result_count = False
    fields = [
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
        "data",
    ]
    readonly_fields = fields
