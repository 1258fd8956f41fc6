"""Retention in the control panel: a workspace's frameworks in scope and what they mean for how
long its events are kept (compliance officers; auditors read), and legal holds — placed with a
reason and an owner, released with a reason, never edited or deleted (docs/retention.md)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.utils.html import format_html_join

from audit.models import LegalHold, RetentionFramework, RetentionPolicy
from audit.retention.policy import FRAMEWORK_MINIMA, policy_retention
from audit.retention.services import (
    MANAGE,
    MANAGE_ORGANIZATION,
    MAX_MINIMUM_MONTHS,
    legal_hold_place,
    legal_hold_release,
    retention_policy_set,
)
from audit.services import denials_record
from governance.access.actions import ACTIONS
from governance.access.admin_base import ActorFormMixin, GovernedModelAdmin
from governance.access.decision import decide, list_reach
from governance.access.queries import restrict
from governance.tenancy.models import Workspace

ORGANIZATION_CHOICE = "organization"


def _workspace_from(value: str):
    value = (value or "").strip()
    if not (value.isascii() and value.isdigit() and len(value) < 19):
        return None
    return Workspace.objects.select_related("organization").filter(pk=int(value)).first()


def _managed_workspaces(actor):
    return [
        ws
        for ws in restrict(Workspace.objects.order_by("name"), actor, MANAGE)
        if decide(actor, MANAGE, ws).allowed
    ]


class RetentionPolicyForm(forms.ModelForm):
    """The frameworks in scope of one workspace, and an optional longer minimum of its own."""

    workspace = forms.CharField(label="Workspace", widget=forms.Select)
    frameworks = forms.MultipleChoiceField(
        choices=[
            (code, f"{label} — {FRAMEWORK_MINIMA[code][0]} months")
            for code, label in RetentionFramework.choices
        ],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="The longest minimum among these, the workspace's own and the platform's floor is kept.",
    )
    minimum_months = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_MINIMUM_MONTHS,
        help_text="Optional: keep events longer than the frameworks ask (months).",
    )

    class Meta:
        model = RetentionPolicy
        fields = ["workspace", "frameworks", "minimum_months"]

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        field = self.fields.get("workspace")
        if field is None:
            return
        if self.instance.pk:
            field.widget.choices = [(str(self.instance.workspace_id), str(self.instance.workspace))]
            field.initial = str(self.instance.workspace_id)
            field.disabled = True
            return
        taken = set(RetentionPolicy.objects.values_list("workspace_id", flat=True))
        offered = [(str(ws.pk), ws.name) for ws in _managed_workspaces(actor) if ws.pk not in taken]
        field.widget.choices = [("", "---------"), *offered]
        field.help_text = (
            "A workspace where you are a compliance officer and that has no policy yet."
            if offered
            else "Every workspace where you are a compliance officer has its policy: change it from the list."
        )

    def clean_workspace(self):
        if self.instance.pk:
            return self.instance.workspace
        workspace = _workspace_from(self.cleaned_data["workspace"])
        if workspace is None:
            raise forms.ValidationError("Choose one of the workspaces listed.")
        decision = decide(self.actor, MANAGE, workspace)
        if not decision.allowed:
            denials_record(decisions=[decision])
            raise forms.ValidationError(
                "You may not set this workspace's retention. The refusal has been recorded in the ledger."
            )
        if RetentionPolicy.objects.filter(workspace=workspace).exists():
            raise forms.ValidationError("This workspace has a policy already: change it from the list.")
        return workspace


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(ActorFormMixin, GovernedModelAdmin):
    """Per workspace: the frameworks in scope and the retention they add up to, with the reasons."""

    form = RetentionPolicyForm
    list_display = ["workspace", "frameworks_in_scope", "kept_for", "updated_at"]
    list_select_related = ["workspace"]
    readonly_fields = ["kept_for", "reasons", "updated_at"]
    ordering = ["workspace__name"]

    def get_fields(self, request, obj=None):
        fields = ["workspace", "frameworks", "minimum_months"]
        return fields if obj is None else [*fields, "kept_for", "reasons", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return ["workspace", "frameworks", "minimum_months", "kept_for", "reasons", "updated_at"]
        return [] if obj is None else ["kept_for", "reasons", "updated_at"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="frameworks in scope")
    def frameworks_in_scope(self, policy: RetentionPolicy) -> str:
        labels = dict(RetentionFramework.choices)
        return ", ".join(labels.get(code, code) for code in policy.frameworks) or "—"

    @admin.display(description="events kept for")
    def kept_for(self, policy: RetentionPolicy) -> str:
        return policy_retention(policy).describe()

    @admin.display(description="every rule that asks for a minimum")
    def reasons(self, policy: RetentionPolicy):
        return format_html_join(
            "", "<p>{} months: {}</p>", ((months, text) for months, text in policy_retention(policy).reasons)
        )

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        return retention_policy_set(
            actor=request.user,
            workspace=data["workspace"],
            frameworks=list(data.get("frameworks") or []),
            minimum_months=data.get("minimum_months"),
        )


HOLD_FIELDS = ["workspace", "subject", "target_type", "target_id", "starts_on", "ends_on", "reason", "owner"]
HOLD_RECORD = [
    "scope",
    "reason",
    "owner",
    "placed_by",
    "placed_at",
    "status",
    "released_by",
    "released_at",
    "release_reason",
]


class LegalHoldForm(forms.ModelForm):
    """A new hold: the events it covers (workspace or whole organisation, optionally one person,
    one object, a time range), why, and who answers for it."""

    workspace = forms.CharField(label="Scope", widget=forms.Select)

    class Meta:
        model = LegalHold
        fields = HOLD_FIELDS

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.organization = getattr(actor, "organization", None)
        field = self.fields["workspace"]
        offered = [(str(ws.pk), ws.name) for ws in _managed_workspaces(actor)]
        if list_reach(actor, ACTIONS[MANAGE_ORGANIZATION]).organization:
            offered.append(
                (ORGANIZATION_CHOICE, "The whole organisation (every workspace and its own events)")
            )
        field.widget.choices = [("", "---------"), *offered]
        field.help_text = "A workspace where you are a compliance officer, or the whole organisation for its administrators."
        # The people of the actor's own organisation (an owner is often legal counsel, who holds no
        # role in the workspace): never anyone else's.
        people = (
            get_user_model().objects.filter(organization=self.organization, is_active=True).order_by("email")
        )
        for name in ("subject", "owner"):
            if name in self.fields:
                self.fields[name].queryset = people
        if "owner" in self.fields:
            self.fields["owner"].initial = getattr(actor, "pk", None)

    def clean_workspace(self):
        value = (self.cleaned_data["workspace"] or "").strip()
        if value == ORGANIZATION_CHOICE:
            decision = decide(self.actor, MANAGE_ORGANIZATION, self.organization)
            if not decision.allowed:
                denials_record(decisions=[decision])
                raise forms.ValidationError(
                    "Holds over the whole organisation are for its administrators. The refusal has been recorded."
                )
            return None
        workspace = _workspace_from(value)
        if workspace is None:
            raise forms.ValidationError("Choose one of the scopes listed.")
        decision = decide(self.actor, MANAGE, workspace)
        if not decision.allowed:
            denials_record(decisions=[decision])
            raise forms.ValidationError(
                "You may not place holds in this workspace. The refusal has been recorded in the ledger."
            )
        return workspace

    def _post_clean(self):
        # The hold is made by the service (which checks the rest); the model's own validation of a
        # half-built instance would only repeat it.
        pass


class LegalHoldReleaseForm(forms.ModelForm):
    """Releasing a hold: the only change a hold ever takes, with a reason."""

    release = forms.CharField(
        label="Release the hold, because",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why the events need not be kept any longer (matter closed, request withdrawn…).",
    )

    class Meta:
        model = LegalHold
        fields: list[str] = []

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)


@admin.register(LegalHold)
class LegalHoldAdmin(ActorFormMixin, GovernedModelAdmin):
    """Legal holds: placed here, released here with a reason; never edited or deleted."""

    list_display = ["__str__", "status", "reason_short", "owner", "placed_at"]
    list_filter = ["workspace"]
    list_select_related = ["workspace", "owner"]
    ordering = ["-id"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = LegalHoldForm if obj is None else LegalHoldReleaseForm
        if obj is not None:
            kwargs["fields"] = ["release"] if obj.active and self.has_change_permission(request, obj) else []
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return HOLD_FIELDS
        releasable = obj.active and self.has_change_permission(request, obj)
        return [*HOLD_RECORD, *(["release"] if releasable else [])]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else HOLD_RECORD

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="covers")
    def scope(self, hold: LegalHold) -> str:
        return hold.scope_label

    @admin.display(description="status")
    def status(self, hold: LegalHold) -> str:
        return "In force" if hold.active else f"Released {hold.released_at:%Y-%m-%d}"

    @admin.display(description="reason")
    def reason_short(self, hold: LegalHold) -> str:
        return hold.reason[:80] + ("…" if len(hold.reason) > 80 else "")

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            return legal_hold_release(actor=request.user, hold=obj, reason=data["release"])
        return legal_hold_place(
            actor=request.user,
            organization=form.organization,
            workspace=data["workspace"],
            subject=data.get("subject"),
            target_type=data.get("target_type", ""),
            target_id=data.get("target_id", ""),
            starts_on=data.get("starts_on"),
            ends_on=data.get("ends_on"),
            reason=data.get("reason", ""),
            owner=data.get("owner"),
        )
