"""The control panel's forms of the AI register: a proposal (a provider's or a model's full new
state, or blocking one, with the reason), the decision on one, and a bias test. Validation only:
each proposal form asks the service's own checks, so a refusal shows beside the field typed."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from governance.core.forms import StorableJSONField
from governance.core.regions import DataRegion
from governance.core.text import MAX_REASON_CHARS
from workflows.ai import bias, services
from workflows.ai.models import (
    AIModel,
    AIProvider,
    BiasMetric,
    BiasTest,
    ModelStatus,
    ProviderKind,
    RegisterChange,
    RegisterEntry,
    RegisterOperation,
)

REASON_HELP = (
    "Required: why. Another compliance officer approves or rejects the proposal; nothing changes before."
)


class RegisterChangeForm(forms.ModelForm):
    """What every proposal carries: the reason. ``setup`` tells the form what it proposes."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=MAX_REASON_CHARS, help_text=REASON_HELP
    )

    class Meta:
        model = RegisterChange
        fields = ["reason"]

    entry = RegisterEntry.PROVIDER
    value_fields: tuple[str, ...] = ()

    def setup(self, *, actor, operation: str, provider: AIProvider | None, model: AIModel | None) -> None:
        self.actor, self.operation, self.provider, self.model = actor, operation, provider, model

    def values(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in self.value_fields}

    def checked(self, values: dict) -> None:
        """The service's checks of ``values``; raise ValidationError with field errors."""

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.checked(self.values())
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        return cleaned

    def validate_unique(self):
        pass


class ProviderChangeForm(RegisterChangeForm):
    """A provider: new, or the full new state of one."""

    slug = forms.SlugField(
        max_length=60, help_text="What ai_prompt steps name as their provider (e.g. llm-eu)."
    )
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=ProviderKind.choices)
    integration_slug = forms.SlugField(
        max_length=60,
        help_text="The workspace integration that is its endpoint (each workspace using it has one).",
    )
    regions = forms.MultipleChoiceField(
        choices=DataRegion.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Where it processes data. A workspace whose data region is not listed may not use it.",
    )
    retention_days = forms.IntegerField(
        min_value=0,
        max_value=services.MAX_RETENTION_DAYS,
        help_text="How long the provider keeps prompts and answers (0: not kept).",
    )
    trains_on_customer_data = forms.BooleanField(required=False, label="Trains on customer data")
    contract_reference = forms.CharField(
        max_length=200, required=False, help_text="The contract clause on training (required for SaaS)."
    )
    dpa_on_file = forms.BooleanField(required=False, label="Data-processing agreement on file")
    last_reviewed_on = forms.DateField(
        required=False, help_text="YYYY-MM-DD. Empty: never reviewed (refused)."
    )
    review_every_days = forms.IntegerField(min_value=1, max_value=services.MAX_REVIEW_DAYS, initial=365)

    entry = RegisterEntry.PROVIDER
    value_fields = services.PROVIDER_FIELDS

    def setup(self, **kwargs) -> None:
        super().setup(**kwargs)
        if self.provider is not None and not self.is_bound:
            self.initial.update(services.provider_state(self.provider))
        if self.provider is not None:
            self.fields["slug"].disabled = True
            self.fields["slug"].initial = self.provider.slug

    def checked(self, values: dict) -> None:
        services.provider_values_checked(
            values,
            organization=self.actor.organization,
            provider=self.provider if self.operation == RegisterOperation.UPDATE else None,
        )


class ModelChangeForm(RegisterChangeForm):
    """A model of a provider: new, or the full new state of one."""

    provider = forms.ModelChoiceField(queryset=AIProvider.objects.none())
    slug = forms.SlugField(
        max_length=60, help_text="What ai_prompt steps name as their model (e.g. small-eu)."
    )
    model_id = forms.CharField(max_length=200, help_text="What the API is sent as `model`.")
    model_version = forms.CharField(max_length=100)
    licence = forms.CharField(max_length=200)
    artefact_sha256 = forms.CharField(
        max_length=64,
        required=False,
        label="Artefact SHA-256",
        help_text="64 hex characters; required for self-hosted and on-premise providers.",
    )
    model_card = StorableJSONField(
        required=False,
        initial=dict,
        help_text="A CycloneDX modelCard object (modelParameters, quantitativeAnalysis, considerations with "
        "fairnessAssessments), at most 64 KB.",
    )
    status = forms.ChoiceField(choices=ModelStatus.choices, initial=ModelStatus.APPROVED)
    last_reviewed_on = forms.DateField(
        required=False, help_text="YYYY-MM-DD. Empty: never reviewed (refused)."
    )
    review_every_days = forms.IntegerField(min_value=1, max_value=services.MAX_REVIEW_DAYS, initial=365)

    entry = RegisterEntry.MODEL
    value_fields = services.MODEL_FIELDS

    def setup(self, *, actor, operation, provider, model, providers=None) -> None:
        super().setup(actor=actor, operation=operation, provider=provider, model=model)
        self.fields["provider"].queryset = providers if providers is not None else AIProvider.objects.none()
        if model is not None:
            self.fields["provider"].initial = model.provider_id
            self.fields["provider"].disabled = True
            self.fields["slug"].disabled = True
            self.fields["slug"].initial = model.slug
            if not self.is_bound:
                self.initial.update(services.model_state(model), provider=model.provider_id)
        elif provider is not None and not self.is_bound:
            self.initial["provider"] = provider.pk

    def clean_model_card(self):
        return self.cleaned_data.get("model_card") or {}

    def checked(self, values: dict) -> None:
        provider = self.cleaned_data.get("provider")
        if provider is None:
            raise ValidationError({"provider": "Choose the model's provider."})
        self.provider = provider
        services.model_values_checked(
            values,
            provider=provider,
            model=self.model if self.operation == RegisterOperation.UPDATE else None,
        )


class BlockChangeForm(RegisterChangeForm):
    """Blocking a model (or every model of a provider): only the reason."""

    def setup(self, **kwargs) -> None:
        super().setup(**kwargs)
        self.entry = RegisterEntry.MODEL if self.model is not None else RegisterEntry.PROVIDER


class RegisterDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", "Approve and apply to the register"), ("reject", "Reject")],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=MAX_REASON_CHARS, help_text="Required: why."
    )


class BiasTestForm(forms.ModelForm):
    """A bias test of one model in one workflow (the record; the test itself ran elsewhere)."""

    protected_attributes = forms.CharField(
        max_length=1000, help_text="Comma-separated, e.g. sex, age band, ethnicity."
    )
    metric = forms.ChoiceField(choices=BiasMetric.choices)

    class Meta:
        model = BiasTest
        fields = [
            "workflow",
            "provider",
            "model",
            "model_version",
            "dataset_reference",
            "protected_attributes",
            "metric",
            "value",
            "threshold",
            "tested_on",
            "notes",
        ]
        help_texts = {
            "value": "The measured ratio, 0 to 1 (1 is parity).",
            "threshold": "The ratio it had to reach, e.g. 0.8 (the four-fifths rule).",
            "provider": "The register's provider slug the workflow's step names.",
            "model": "The register's model slug the workflow's step names.",
        }

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor

    def clean_protected_attributes(self) -> list[str]:
        text = self.cleaned_data["protected_attributes"]
        return [part.strip() for part in text.split(",") if part.strip()]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            bias.bias_values_checked(**{name: cleaned.get(name) for name in bias.CHECKED_FIELDS})
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        return cleaned

    def _post_clean(self):
        pass  # the service writes the row; its checks ran in clean()

    def validate_unique(self):
        pass
