"""Forms of the run pages: validation only; the services decide and record."""

from __future__ import annotations

import json
import uuid

from django import forms

from workflows.executions.models import ExecutionStatus, TriggerKind


class RunFilterForm(forms.Form):
    """The runs list's filters (a GET form): an unknown value is an error on its field."""

    status = forms.ChoiceField(choices=[("", "Any status"), *ExecutionStatus.choices], required=False)
    trigger_kind = forms.ChoiceField(
        label="Trigger", choices=[("", "Any trigger"), *TriggerKind.choices], required=False
    )
    before = forms.IntegerField(min_value=1, max_value=2**31 - 1, required=False, widget=forms.HiddenInput)


class TriggerForm(forms.Form):
    """*Run this workflow*: a JSON object as input. The hidden key makes a double submit start one
    run: the second post finds the run the first one started."""

    input = forms.CharField(
        label="Input (a JSON object)",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        initial="{}",
        help_text="Values that look like secrets are redacted before they are stored.",
        strip=False,
    )
    idempotency_key = forms.CharField(max_length=200, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)

    def clean_input(self):
        text = self.cleaned_data["input"]
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise forms.ValidationError(f"This is not valid JSON: {error}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('The input must be a JSON object, e.g. {"amount": 7}.')
        return value


class CancelForm(forms.Form):
    reason = forms.CharField(
        label="Reason for stopping this run", max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )


class RestartForm(forms.Form):
    reason = forms.CharField(
        label="Reason for going on", max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )
