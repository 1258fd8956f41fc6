"""The integrations page's forms: ask to connect a system, and the manager's decision on it."""

from __future__ import annotations

from django import forms

from governance.core.choices import ReviewDecision
from workflows.integrations.models import Sensitivity


class IntegrationRequestForm(forms.Form):
    """Ask to connect a system; financial and HR systems wait for your manager."""

    workspace = forms.ModelChoiceField(queryset=None, empty_label=None)
    name = forms.CharField(max_length=120)
    slug = forms.SlugField(max_length=60, help_text="How workflow steps refer to it, e.g. crm.")
    kind = forms.CharField(max_length=40, help_text="e.g. crm, hris, erp, ai_provider")
    sensitivity = forms.ChoiceField(choices=Sensitivity.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="What it is for.")

    def __init__(self, *args, workspaces, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspace"].queryset = workspaces


class ManagerDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            (ReviewDecision.APPROVE, "Approve and connect"),
            (ReviewDecision.REJECT, ReviewDecision.REJECT.label),
        ],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Required: why.")
