"""Attribute policies, their governed changes, the "try it" form and on-call overrides in the control panel."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from governance.access import posture, services
from governance.access.actions import ACTIONS
from governance.access.admin_base import ActorFormMixin, GovernedModelAdmin, ReadOnlyModelAdmin
from governance.access.cedar import validate_policy_text
from governance.access.decision import decide
from governance.access.models import ChangeStatus, OnCallOverride, Policy, PolicyChange
from governance.access.policies import try_policies
from governance.access.queries import restrict
from governance.access.selectors import policy_text_diff
from governance.core.choices import ReviewDecision
from governance.core.regions import DataRegion
from governance.tenancy.models import Workspace
from governance.tenancy.selectors import workspaces_visible_to


def _own_workspaces(user):
    return Workspace.objects.filter(organization_id=user.organization_id)


@admin.register(Policy)
class PolicyAdmin(ReadOnlyModelAdmin):
    """Policies in force. Changing one means proposing a change (see Policy changes)."""

    list_display = ["name", "scope", "enabled", "version", "updated_at"]
    fields = ["name", "scope", "description", "text", "enabled", "version", "updated_at"]
    readonly_fields = fields
    change_form_template = "admin/access/policy/change_form.html"
    change_list_template = "admin/access/policy/change_list.html"

    @admin.display(description="applies to")
    def scope(self, policy: Policy) -> str:
        return "every organisation (shipped)" if policy.organization_id is None else str(policy.organization)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Per request, never on the admin instance (it is shared by every request): the viewer
        # sees only their own organisation's switches of a shipped policy.
        policy = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if policy is not None:
            mine = policy.disabled_workspaces.filter(organization_id=request.user.organization_id)
            context["switched_off_in"] = ", ".join(w.name for w in mine) or "—"
        return super().change_view(request, object_id, form_url, context)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(Q(organization__isnull=True) | Q(organization_id=request.user.organization_id))
        )

    def get_urls(self):
        return [
            path("try/", self.admin_site.admin_view(self.try_view), name="access_policy_try"),
            *super().get_urls(),
        ]

    def try_view(self, request):
        if not decide(request.user, "policy.view").allowed:
            raise PermissionDenied
        form = TryPolicyForm(request.GET or None, actor=request.user)
        outcome = form.outcome() if form.is_bound and form.is_valid() else None
        context = {
            **self.admin_site.each_context(request),
            "title": "Try the policies",
            "form": form,
            "outcome": outcome,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/access/policy/try.html", context)


class TryPolicyForm(forms.Form):
    """Who does what to which (hypothetical) resource, when: what do the policies say?"""

    subject = forms.ModelChoiceField(queryset=None, help_text="The person acting.")
    action = forms.ChoiceField(choices=[(code, code) for code in ACTIONS])
    kind = forms.ChoiceField(
        label="Resource",
        choices=[("Workflow", "Workflow"), ("Integration", "Integration"), ("Workspace", "Workspace")],
    )
    workspace = forms.ModelChoiceField(queryset=None)
    data_region = forms.ChoiceField(choices=DataRegion.choices, required=False, help_text="Workflows")
    environment = forms.ChoiceField(
        choices=[(v, v) for v in ("production", "staging", "development")],
        required=False,
        help_text="Workflows",
    )
    handles_pii = forms.BooleanField(required=False, label="Handles personal data", help_text="Workflows")
    sensitivity = forms.ChoiceField(
        choices=[(v, v) for v in ("none", "financial", "hr")], required=False, help_text="Integrations"
    )
    when = forms.DateTimeField(
        required=False, help_text="Empty: now. Interpreted in UTC, e.g. 2026-06-16 17:40"
    )
    privacy_approved = forms.BooleanField(required=False)
    manager_approved = forms.BooleanField(required=False)
    draft = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 100}),
        help_text="Optional: policy text to try as if it were in force.",
    )

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subject"].queryset = get_user_model().objects.filter(
            organization_id=actor.organization_id, is_active=True
        )
        self.fields["workspace"].queryset = workspaces_visible_to(actor)

    def clean_draft(self) -> str:
        draft = self.cleaned_data["draft"]
        if draft.strip():
            problems = validate_policy_text(draft)
            if problems:
                raise forms.ValidationError([str(problem) for problem in problems])
        return draft

    def outcome(self):
        data = self.cleaned_data
        kind = data["kind"]
        if kind == "Workflow":
            attributes = {
                "data_region": data["data_region"] or "EU",
                "environment": data["environment"] or "production",
                "handles_pii": data["handles_pii"],
            }
        elif kind == "Integration":
            attributes = {"sensitivity": data["sensitivity"] or "none"}
        else:
            attributes = {
                "data_region": data["workspace"].data_region,
                "time_zone": data["workspace"].time_zone,
            }
        extra = {"at": data["when"] or timezone.now()}
        for name in ("privacy_approved", "manager_approved"):
            if data[name]:
                extra[name] = True
        draft = ("draft", data["draft"]) if data["draft"].strip() else None
        return try_policies(
            subject=data["subject"],
            action=data["action"],
            kind=kind,
            attributes=attributes,
            workspace=data["workspace"],
            extra=extra,
            draft=draft,
        )


class ShownValue(forms.Widget):
    """A value shown as it is, for a field nobody may type into (the shipped policy's text, wrapped
    by the control panel's stylesheet so that it never scrolls)."""

    def __init__(self, *, element: str = "div", attrs=None):
        super().__init__(attrs)
        self.element = element

    def render(self, name, value, attrs=None, renderer=None):
        return format_html(
            '<{} class="shown-value" id="{}">{}</{}>',
            self.element,
            (attrs or {}).get("id", ""),
            "" if value is None else value,
            self.element,
        )


class PolicyChangeForm(forms.ModelForm):
    """A proposal: the policy's full new state and why. The text is checked before anything is saved."""

    class Meta:
        model = PolicyChange
        fields = ["policy", "name", "description", "text", "enabled", "disabled_workspaces", "reason"]
        widgets = {
            "text": forms.Textarea(
                attrs={"rows": 14, "cols": 100, "class": "vLargeTextField", "spellcheck": "false"}
            )
        }

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        if "policy" not in self.fields:  # a proposal on display: every field is read-only
            return
        self.fields["policy"].queryset = Policy.objects.filter(
            Q(organization__isnull=True) | Q(organization_id=actor.organization_id)
        )
        self.fields["policy"].required = False
        self.fields["policy"].help_text = "Leave empty to propose a new policy."
        self.fields["name"].required = False
        self.fields["disabled_workspaces"].queryset = _own_workspaces(actor)
        self.fields["disabled_workspaces"].required = False
        self.shipped = None
        policy = self._chosen_policy()
        if policy is not None and not self.is_bound:
            self.initial.update(
                name=policy.name,
                text=policy.text,
                description=policy.description,
                enabled=policy.enabled,
                disabled_workspaces=list(
                    policy.disabled_workspaces.filter(organization_id=actor.organization_id)
                ),
            )
        if policy is not None and policy.organization_id is None:
            self._fix_shipped(policy)

    def _chosen_policy(self) -> Policy | None:
        """The policy this proposal changes: the one posted, or on a first display the one the
        "Propose a change" link names."""
        policy_id = self.data.get("policy") if self.is_bound else self.initial.get("policy")
        if not policy_id or not str(policy_id).isdigit():
            return None
        return self.fields["policy"].queryset.filter(pk=policy_id).first()

    def _fix_shipped(self, policy: Policy) -> None:
        """A shipped policy's text, description and switch are the same for every organisation:
        they are shown, not offered for typing (a disabled field keeps its shown value whatever is
        posted), and the page says what can be done instead."""
        self.shipped = policy
        fixed = {
            "name": policy.name,
            "text": policy.text,
            "description": policy.description,
            "enabled": policy.enabled,
        }
        for name, value in fixed.items():
            self.fields[name].disabled = True
            # Exactly the shipped value: a stripped trailing newline would be a change of text.
            if hasattr(self.fields[name], "strip"):
                self.fields[name].strip = False
            self.fields[name].initial = value
            self.initial[name] = value
        self.fields["name"].widget = ShownValue()
        self.fields["description"].widget = ShownValue()
        self.fields["text"].widget = ShownValue(element="pre")
        self.fields["text"].help_text = services.SHIPPED_POLICY_FIXED
        self.fields[
            "disabled_workspaces"
        ].help_text = "The workspaces of your organisation where this shipped policy does not apply."

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        problems = validate_policy_text(text)
        if problems:
            raise forms.ValidationError([str(problem) for problem in problems])
        return text

    def clean(self):
        cleaned = super().clean()
        policy = cleaned.get("policy")
        if policy is None and not cleaned.get("name"):
            self.add_error(
                "name", "Name the new policy (e.g. weekend-freeze), or choose the policy to change."
            )
        if self.errors:
            return cleaned
        # The service's own rules, shown beside what was typed instead of refused after the post.
        problems = services.policy_change_errors(
            organization=self.actor.organization,
            policy=policy,
            name=policy.name if policy else cleaned.get("name", ""),
            text=cleaned.get("text", ""),
            enabled=cleaned.get("enabled", False),
            description=cleaned.get("description", ""),
            disabled_workspaces=list(cleaned.get("disabled_workspaces") or ()),
        )
        for field, message in problems.items():
            self.add_error(field if field in self.fields else None, message)
        return cleaned

    def validate_unique(self):
        pass  # the service checks name clashes with a clearer message


@admin.register(PolicyChange)
class PolicyChangeAdmin(ActorFormMixin, GovernedModelAdmin):
    form = PolicyChangeForm
    list_display = ["name", "status", "proposed_by", "proposed_at", "decided_by", "decided_at"]
    list_filter = ["status"]
    list_select_related = ["proposed_by", "decided_by"]
    change_form_template = "admin/access/policychange/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "policy",
            "name",
            "description",
            "text",
            "enabled",
            "disabled_workspaces",
            "reason",
            "status",
            "proposed_by",
            "proposed_at",
            "decided_by",
            "decided_at",
            "decision_comment",
        ]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) if obj is not None else super().get_fields(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # decisions go through their own confirmation page, never through edits

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        policy = data.get("policy")
        return services.policy_change_propose(
            actor=request.user,
            organization=request.user.organization,
            policy=policy,
            name=policy.name if policy else data["name"],
            text=data["text"],
            reason=data["reason"],
            enabled=data["enabled"],
            disabled_workspaces=list(data["disabled_workspaces"]),
            description=data["description"],
        )

    def save_related(self, request, form, formsets, change):
        pass  # the service set the workspaces

    def get_urls(self):
        return [
            path(
                "<int:change_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="access_policychange_decide",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        change = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if change is not None:
            context["can_decide"] = (
                change.status == ChangeStatus.PENDING
                and change.proposed_by_id != request.user.pk
                and decide(request.user, "policy.manage", change.organization).allowed
            )
            current = change.policy.text if change.policy_id and change.status == ChangeStatus.PENDING else ""
            context["text_diff"] = policy_text_diff(current, change.text)
        return super().change_view(request, object_id, form_url, context)

    def decide_view(self, request, change_id: int):
        change = get_object_or_404(
            restrict(PolicyChange.objects.all(), request.user, "policy.view"), pk=change_id
        )
        if not decide(request.user, "policy.manage", change.organization).allowed:
            raise PermissionDenied
        form = DecisionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                if form.cleaned_data["decision"] == ReviewDecision.APPROVE:
                    services.policy_change_approve(
                        actor=request.user, change=change, comment=form.cleaned_data["comment"]
                    )
                    messages.success(request, f"Approved: {change.name} is now in force.")
                else:
                    services.policy_change_reject(
                        actor=request.user, change=change, comment=form.cleaned_data["comment"]
                    )
                    messages.success(request, f"Rejected the change to {change.name}.")
                return HttpResponseRedirect(reverse("admin:access_policychange_change", args=[change.pk]))
            except ValidationError as error:
                for message in error.messages:
                    form.add_error(None, message)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Decide on the change to {change.name}",
            "change": change,
            "form": form,
            "opts": self.model._meta,
            "text_diff": policy_text_diff(change.policy.text if change.policy_id else "", change.text),
        }
        return TemplateResponse(request, "admin/access/policychange/decide.html", context)


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            (ReviewDecision.APPROVE, "Approve and put in force"),
            (ReviewDecision.REJECT, ReviewDecision.REJECT.label),
        ],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Required: why.")


class OnCallOverrideForm(forms.ModelForm):
    """Break the glass: where, why, for how long."""

    hours = forms.IntegerField(min_value=1, max_value=12, initial=2, help_text="At most 12 hours.")

    class Meta:
        model = OnCallOverride
        fields = ["workspace", "reason"]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        if "workspace" in self.fields:  # absent when an override is on display (read-only)
            self.fields["workspace"].queryset = restrict(Workspace.objects.all(), actor, "oncall.activate")

    def validate_unique(self):
        pass


@admin.register(OnCallOverride)
class OnCallOverrideAdmin(ActorFormMixin, GovernedModelAdmin):
    form = OnCallOverrideForm
    list_display = ["user", "workspace", "starts_at", "ends_at", "active"]
    list_select_related = ["user", "workspace"]
    change_form_template = "admin/access/oncalloverride/change_form.html"

    @admin.display(boolean=True)
    def active(self, override: OnCallOverride) -> bool:
        return override.is_active()

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["workspace", "reason", "hours"]
        return ["user", "workspace", "reason", "starts_at", "ends_at", "ended_at", "ended_by"]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj is not None else []

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def service_save(self, request, obj, form, change):
        return services.oncall_override_activate(
            actor=request.user,
            workspace=form.cleaned_data["workspace"],
            reason=form.cleaned_data["reason"],
            duration=timedelta(hours=form.cleaned_data["hours"]),
        )

    def get_urls(self):
        return [
            path(
                "<int:override_id>/end/",
                self.admin_site.admin_view(self.end_view),
                name="access_oncalloverride_end",
            ),
            *super().get_urls(),
        ]

    def end_view(self, request, override_id: int):
        override = get_object_or_404(self.get_queryset(request), pk=override_id)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:access_oncalloverride_change", args=[override.pk]))
        try:
            services.oncall_override_end(actor=request.user, override=override)
            messages.success(request, "The override has ended.")
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        return HttpResponseRedirect(reverse("admin:access_oncalloverride_change", args=[override.pk]))


posture.register()  # the app's rows of the control panel's posture table
