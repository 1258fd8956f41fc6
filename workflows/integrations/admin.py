"""Connector types, the network allow-list and integrations in the control panel.

Officers (and platform administrators) register and vet connector types; platform administrators
keep the allow-list; workspace owners connect integrations and set their endpoints. Every save
goes through a service; a refused endpoint shows on its field, saying why.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from governance.access.admin_base import ActorFormMixin, GovernedModelAdmin
from governance.access.decision import decide
from governance.access.queries import restrict
from governance.tenancy.models import Workspace
from workflows.integrations import services
from workflows.integrations.models import (
    ConnectorType,
    Integration,
    NetworkAllowRule,
    Sensitivity,
    VettingStatus,
)

CONNECTOR_FIELDS = ["code", "name", "maintainer", "documentation_url"]
VETTING_FIELDS = ["vetting_status", "vetting_note", "vetted_by", "vetted_at"]


class ConnectorTypeForm(forms.ModelForm):
    """A new connector type: what it is and who maintains it. It starts pending."""

    documentation_url = forms.URLField(
        label="Documentation URL", required=False, max_length=500, assume_scheme="https"
    )

    class Meta:
        model = ConnectorType
        fields = CONNECTOR_FIELDS

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.organization = actor.organization

    def validate_unique(self) -> None:
        # The service says it more plainly ("A connector type with this code exists already.").
        pass


class ConnectorVetForm(forms.ModelForm):
    """The vetting decision on a connector type, with how it was vetted."""

    decision = forms.ChoiceField(choices=VettingStatus.choices, widget=forms.RadioSelect)
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required: how it was vetted (review, vendor assessment), or why it is held or blocked.",
    )

    class Meta:
        model = ConnectorType
        fields: list[str] = []

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["decision"].initial = self.instance.vetting_status


@admin.register(ConnectorType)
class ConnectorTypeAdmin(ActorFormMixin, GovernedModelAdmin):
    """Who maintains each connector type, and how it was vetted; the change page is the vetting form."""

    list_display = ["name", "code", "maintainer", "vetting_status", "vetted_by", "vetted_at"]
    list_filter = ["vetting_status"]
    list_select_related = ["vetted_by"]
    search_fields = ["name", "code", "maintainer"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ConnectorVetForm if obj is not None else ConnectorTypeForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        return (
            [*CONNECTOR_FIELDS, *VETTING_FIELDS, "decision", "note"] if obj is not None else CONNECTOR_FIELDS
        )

    def get_readonly_fields(self, request, obj=None):
        return [*CONNECTOR_FIELDS, *VETTING_FIELDS] if obj is not None else []

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            return services.connector_type_vet(
                actor=request.user, connector=obj, status=data["decision"], note=data["note"]
            )
        return services.connector_type_create(
            actor=request.user,
            organization=request.user.organization,
            **{name: data[name] for name in CONNECTOR_FIELDS},
        )


class NetworkAllowRuleForm(forms.ModelForm):
    """An exception to the network boundary, with the reason it is needed."""

    class Meta:
        model = NetworkAllowRule
        fields = ["destination", "reason"]

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.instance.organization, self.instance.created_by = actor.organization, actor

    def clean_destination(self) -> str:
        return services.allow_rule_destination_validate(self.cleaned_data["destination"])


@admin.register(NetworkAllowRule)
class NetworkAllowRuleAdmin(ActorFormMixin, GovernedModelAdmin):
    """Internal hosts and networks that integrations may reach; rules are added or removed, never edited."""

    form = NetworkAllowRuleForm
    list_display = ["destination", "reason", "created_by", "created_at"]
    list_select_related = ["created_by"]
    search_fields = ["destination", "reason"]

    def get_readonly_fields(self, request, obj=None):
        return ["destination", "reason", "created_by", "created_at"] if obj is not None else []

    def service_save(self, request, obj, form, change):
        return services.network_allow_rule_create(
            actor=request.user,
            organization=request.user.organization,
            destination=form.cleaned_data["destination"],
            reason=form.cleaned_data["reason"],
        )

    def service_delete(self, request, obj) -> None:
        services.network_allow_rule_remove(actor=request.user, rule=obj)


class SpkiPinsField(forms.CharField):
    """SPKI pins, one base64 SHA-256 hash per line."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60, "spellcheck": "false"})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value) -> list[str]:
        return [line.strip() for line in (super().to_python(value) or "").splitlines() if line.strip()]


class IntegrationForm(forms.ModelForm):
    """An integration's connector, endpoint and pins; the network boundary is checked on the field."""

    spki_pins = SpkiPinsField(
        required=False,
        label="SPKI pins",
        help_text="Optional: base64 SHA-256 hashes of the server's public key, one per line.",
    )

    class Meta:
        model = Integration
        fields = [
            "workspace",
            "name",
            "slug",
            "kind",
            "sensitivity",
            "connector",
            "endpoint_url",
            "spki_pins",
        ]

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        if "workspace" in self.fields:
            self.fields["workspace"].queryset = restrict(Workspace.objects.all(), actor, "integration.manage")
            self.fields["workspace"].empty_label = None
        if "connector" in self.fields:  # absent on a read-only view
            self.fields["connector"].queryset = ConnectorType.objects.filter(
                organization_id=actor.organization_id
            )
            self.fields["connector"].help_text = "Only approved connector types may be used."
        if "endpoint_url" in self.fields:
            self.fields["endpoint_url"].help_text = (
                "https only; internal addresses (loopback, private, link-local, metadata) are refused "
                "unless an administrator allow-lists them."
            )

    def clean_connector(self) -> ConnectorType | None:
        connector = self.cleaned_data.get("connector")
        if connector is not None and connector.vetting_status != VettingStatus.APPROVED:
            unchanged = self.instance.pk is not None and self.instance.connector_id == connector.pk
            verdict = (
                "is blocked"
                if connector.vetting_status == VettingStatus.BLOCKED
                else "has not been vetted yet"
            )
            advice = "move this integration to an approved one" if unchanged else "choose an approved one"
            raise forms.ValidationError(f"The connector type {connector.name} {verdict}; {advice}.")
        return connector

    def clean(self):
        cleaned = super().clean()
        try:
            services.endpoint_settings_clean(
                organization_id=self.actor.organization_id,
                endpoint_url=cleaned.get("endpoint_url", ""),
                spki_pins=cleaned.get("spki_pins"),
            )
        except forms.ValidationError as error:
            for field, problems in error.message_dict.items():
                self.add_error(field, problems)
        self._check_policy(cleaned)
        return cleaned

    def _check_policy(self, cleaned: dict) -> None:
        """A financial or HR system needs the manager's approval: say so on the field, and where to ask."""
        if self.instance.pk is not None or cleaned.get("workspace") is None:
            return
        probe = Integration(
            workspace=cleaned["workspace"], sensitivity=cleaned.get("sensitivity", Sensitivity.NONE)
        )
        decision = decide(self.actor, "integration.manage", probe, {"manager_approved": False})
        if not decision.allowed:
            self.add_error("sensitivity", f"{decision.message} Ask for it on the integrations page.")

    def _post_clean(self) -> None:
        # The service validates the row when it writes it.
        pass


@admin.register(Integration)
class IntegrationAdmin(ActorFormMixin, GovernedModelAdmin):
    """Connected systems: owners set the connector, the endpoint and its pins."""

    form = IntegrationForm
    list_display = ["name", "slug", "workspace", "connector", "sensitivity", "endpoint_url"]
    list_filter = ["sensitivity"]
    list_select_related = ["workspace", "connector"]
    search_fields = ["name", "slug"]

    def get_readonly_fields(self, request, obj=None):
        return ["workspace", "slug", "kind"] if obj is not None else []

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            return services.integration_update(
                actor=request.user,
                integration=obj,
                name=data["name"],
                sensitivity=data["sensitivity"],
                connector=data["connector"],
                endpoint_url=data["endpoint_url"],
                spki_pins=data["spki_pins"],
            )
        return services.integration_create(actor=request.user, **data)
