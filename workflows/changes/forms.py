"""The builders' forms: workflow settings, the structured step editor and the JSON view.

Forms only validate and translate; the services decide and write. Errors from the definition
checks (``steps[2].integration``) are put back on the step row and field they name.
"""

from __future__ import annotations

import json
import re

from django import forms
from django.core.exceptions import ValidationError
from django.forms import formset_factory

from governance.core.regions import DataRegion
from governance.core.text import validate_storable_json
from workflows.changes.definition import STEP_TYPES
from workflows.changes.models import Environment

STEP_FIELDS = {
    "http_request": ("integration", "method", "path", "next"),
    "transform": ("expression", "next"),
    "branch": ("condition", "then", "else"),
    "ai_prompt": ("provider", "model", "prompt", "output_schema", "guardrails", "next"),
    "human_approval": ("approver_role", "next"),
}
JSON_FIELDS = ("output_schema", "guardrails")


class WorkflowSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=80, help_text="Short name used in URLs, e.g. ticket-triage.")
    environment = forms.ChoiceField(choices=Environment.choices)
    data_region = forms.ChoiceField(choices=DataRegion.choices)
    handles_pii = forms.BooleanField(required=False, label="Handles personal data")


class ChangeForm(forms.Form):
    summary = forms.CharField(max_length=300, help_text="One line: what this change does and why.")
    base_version = forms.IntegerField(required=False, widget=forms.HiddenInput)
    trigger_type = forms.ChoiceField(
        choices=[("manual", "Manual"), ("schedule", "Schedule"), ("webhook", "Webhook")], label="Trigger"
    )
    trigger_cron = forms.CharField(required=False, label="Schedule (cron)", help_text="e.g. 0 6 * * 1-5")
    trigger_path = forms.CharField(required=False, label="Webhook path", help_text="e.g. /tickets")


class StepForm(forms.Form):
    """One step. Only the fields of its type are used; the others are ignored."""

    id = forms.RegexField(
        regex=r"^[a-z][a-z0-9_-]{0,39}$",
        label="Step id",
        error_messages={"invalid": "Lower-case letters, digits, - and _; start with a letter."},
    )
    type = forms.ChoiceField(choices=[(t, t.replace("_", " ")) for t in STEP_TYPES])
    integration = forms.CharField(required=False, help_text="http request: integration slug")
    method = forms.ChoiceField(
        required=False, choices=[("", "—")] + [(m, m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE")]
    )
    path = forms.CharField(required=False, help_text="http request: path, e.g. /tickets")
    expression = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="transform"
    )
    condition = forms.CharField(required=False, help_text="branch: condition")
    then = forms.CharField(required=False, help_text="branch: step if true")
    else_ = forms.CharField(required=False, label="Else", help_text="branch: step if false")
    provider = forms.CharField(required=False, help_text="AI prompt: provider integration slug")
    model = forms.CharField(required=False, help_text="AI prompt: model name")
    prompt = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="AI prompt: template"
    )
    output_schema = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='AI prompt: expected output as JSON Schema, e.g. {"type": "object"}',
    )
    guardrails = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='AI prompt: e.g. {"redact_pii": true, "max_tokens": 500}',
    )
    approver_role = forms.CharField(required=False, help_text="human approval: role that approves")
    next = forms.CharField(required=False, help_text="step that follows (empty: the end)")

    def clean(self):
        cleaned = super().clean()
        for name in JSON_FIELDS:
            raw = cleaned.get(name)
            if raw:
                try:
                    cleaned[name] = json.loads(raw)
                    validate_storable_json(cleaned[name])
                except ValidationError as error:
                    self.add_error(name, error)
                except json.JSONDecodeError as error:
                    self.add_error(name, f"Not valid JSON: {error.msg} (line {error.lineno}).")
                except RecursionError:
                    self.add_error(name, "The JSON is nested too deeply.")
        return cleaned

    def relevant_fields(self) -> list:
        """The fields of this step's type (all of them for the empty "add a step" row), so the
        editor shows what matters without JavaScript; a changed type shows its own after saving."""
        step_type = (self.data.get(self.add_prefix("type")) if self.is_bound else None) or self.initial.get(
            "type"
        )
        if step_type not in STEP_FIELDS:
            return list(self)
        names = [
            "id",
            "type",
            *("else_" if n == "else" else n for n in STEP_FIELDS[step_type]),
            "ORDER",
            "DELETE",
        ]
        return [self[name] for name in names if name in self.fields]

    def to_step(self) -> dict:
        data = self.cleaned_data
        step = {"id": data["id"], "type": data["type"]}
        for name in STEP_FIELDS[data["type"]]:
            value = data.get("else_" if name == "else" else name)
            if name == "next":
                step["next"] = value or None
            elif value not in ("", None):
                step[name] = value
        return step


StepFormSet = formset_factory(
    StepForm, extra=1, can_order=True, can_delete=True, max_num=100, validate_max=True
)


def step_initial(definition: dict) -> list[dict]:
    """Formset rows for a definition's steps."""
    rows = []
    for step in definition.get("steps", []):
        row = {k: v for k, v in step.items() if k not in ("else", *JSON_FIELDS)}
        row["else_"] = step.get("else", "")
        row["next"] = step.get("next") or ""
        for name in JSON_FIELDS:
            if name in step:
                row[name] = json.dumps(step[name])
        rows.append(row)
    return rows


def trigger_initial(definition: dict) -> dict:
    trigger = definition.get("trigger", {"type": "manual"})
    return {
        "trigger_type": trigger.get("type"),
        "trigger_cron": trigger.get("cron", ""),
        "trigger_path": trigger.get("path", ""),
    }


def definition_from(change_form: ChangeForm, steps: StepFormSet) -> tuple[dict, list[StepForm]]:
    """The definition the structured editor describes (order and deletions applied), and the step
    forms in definition order (to put errors back where they belong)."""
    data = change_form.cleaned_data
    trigger = {"type": data["trigger_type"]}
    if data["trigger_type"] == "schedule":
        trigger["cron"] = data["trigger_cron"]
    elif data["trigger_type"] == "webhook":
        trigger["path"] = data["trigger_path"]
    rows = [form for form in steps.ordered_forms if not form.cleaned_data.get("DELETE")]
    rows += [
        form
        for form in steps.forms
        if form.has_changed()
        and form not in rows
        and not form.cleaned_data.get("DELETE")
        and form.cleaned_data.get("id")
    ]
    rows = [form for form in rows if form.cleaned_data.get("id")]
    return {"trigger": trigger, "steps": [form.to_step() for form in rows]}, rows


class JsonDefinitionForm(forms.Form):
    """The expert view: the whole definition as JSON."""

    summary = forms.CharField(max_length=300, help_text="One line: what this change does and why.")
    base_version = forms.IntegerField(required=False, widget=forms.HiddenInput)
    definition = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "spellcheck": "false"})
    )

    def clean_definition(self):
        try:
            definition = json.loads(self.cleaned_data["definition"])
        except json.JSONDecodeError as error:
            raise forms.ValidationError(
                f"Not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
            ) from None
        except RecursionError:
            raise forms.ValidationError("The JSON is nested too deeply.") from None
        validate_storable_json(definition)
        return definition


_STEP_ERROR = re.compile(r"^steps\[(\d+)\](?:\.(\w+))?: (.*)$")


def place_definition_errors(messages: list[str], change_form: forms.Form, step_forms: list[StepForm]) -> None:
    """Put ``steps[i].field: message`` errors on the step row and field; the rest on the form."""
    for message in messages:
        match = _STEP_ERROR.match(message)
        if match and int(match.group(1)) < len(step_forms):
            index, field, text = int(match.group(1)), match.group(2), match.group(3)
            form = step_forms[index]
            if form is not None:
                name = "else_" if field == "else" else field
                form.add_error(name if name in form.fields else None, text)
                continue
        if message.startswith("trigger") and "trigger_type" in change_form.fields:
            change_form.add_error("trigger_type", message.split(": ", 1)[-1])
        else:
            change_form.add_error(None, message)
