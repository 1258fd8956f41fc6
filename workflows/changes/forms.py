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
from governance.core.text import validate_display_name, validate_storable_json
from workflows.changes.definition import STEP_TYPES
from workflows.changes.models import Environment
from workflows.changes.schedule import cron_problem

STEP_FIELDS = {
    "http_request": ("integration", "method", "path", "body", "next"),
    "transform": ("expression", "next"),
    "branch": ("condition", "then", "else"),
    "ai_prompt": (
        "provider", "model", "system", "prompt", "data", "output_schema", "validators", "routes", "guardrails",
        "impact", "decides_about_people", "reviewer_role", "review_hours", "next",
    ),
    "human_approval": ("approver_role", "timeout_hours", "on_timeout", "next"),
}  # fmt: skip
JSON_FIELDS = ("output_schema", "validators", "routes", "guardrails")
# The trigger's own fields, by trigger type: only the chosen type's are checked and kept.
TRIGGER_FIELDS = {"schedule": ("trigger_cron",), "webhook": ("trigger_path",)}


class WorkflowSettingsForm(forms.Form):
    name = forms.CharField(max_length=200, validators=[validate_display_name])
    slug = forms.SlugField(max_length=80, help_text="Short name used in URLs, e.g. ticket-triage.")
    environment = forms.ChoiceField(choices=Environment.choices)
    data_region = forms.ChoiceField(choices=DataRegion.choices)
    handles_pii = forms.BooleanField(required=False, label="Handles personal data")


class ChangeForm(forms.Form):
    summary = forms.CharField(
        max_length=300,
        help_text="One line: what this change does and why.",
        validators=[validate_display_name],
    )
    base_version = forms.IntegerField(required=False, widget=forms.HiddenInput)
    trigger_type = forms.ChoiceField(
        choices=[("manual", "Manual"), ("schedule", "Schedule"), ("webhook", "Webhook")], label="Trigger"
    )
    trigger_cron = forms.CharField(
        required=False,
        label="Schedule (cron)",
        help_text="Five fields: minute hour day-of-month month day-of-week, in the workspace's time zone; "
        "e.g. 0 6 * * 1-5 (06:00 on weekdays).",
    )
    trigger_path = forms.CharField(required=False, label="Webhook path", help_text="e.g. /tickets")
    input_schema = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Input schema",
        help_text='What a run\'s input must look like, as JSON Schema, e.g. {"type": "object", "required": '
        '["ticket"]} (empty: any JSON object)',
    )

    def clean(self):
        cleaned = super().clean()
        raw = cleaned.get("input_schema")
        if raw:
            try:
                cleaned["input_schema"] = json.loads(raw)
                validate_storable_json(cleaned["input_schema"])
            except ValidationError as error:
                self.add_error("input_schema", error)
            except json.JSONDecodeError as error:
                self.add_error("input_schema", f"Not valid JSON: {error.msg} (line {error.lineno}).")
            except RecursionError:
                self.add_error("input_schema", "The JSON is nested too deeply.")
        # The other types' fields are shown without script and may hold anything: never judged.
        kind = cleaned.get("trigger_type")
        if kind == "schedule":
            problem = cron_problem(cleaned.get("trigger_cron", ""))
            if problem:
                self.add_error("trigger_cron", problem)
        elif kind == "webhook" and not cleaned.get("trigger_path", "").strip():
            self.add_error("trigger_path", "A webhook needs a path, e.g. /tickets.")
        return cleaned

    def typed_fields(self) -> list[tuple]:
        """Every field with the trigger types it belongs to ("" for all): the page shows them all,
        and a line of script hides those of the other types as the trigger type changes."""
        return [
            (field, " ".join(t for t, names in TRIGGER_FIELDS.items() if field.name in names))
            for field in self
        ]


class StepForm(forms.Form):
    """One step. Only the fields of its type are used (and shown); the others are ignored."""

    id = forms.RegexField(
        regex=r"^[a-z][a-z0-9_-]{0,39}$",
        label="Step id",
        error_messages={"invalid": "Lower-case letters, digits, - and _; start with a letter."},
    )
    type = forms.ChoiceField(
        choices=[("", "— choose a type —")] + [(t, t.replace("_", " ")) for t in STEP_TYPES],
        error_messages={"required": "Choose what this step does."},
    )
    integration = forms.CharField(required=False, help_text="http request: integration slug")
    method = forms.ChoiceField(
        required=False, choices=[("", "—")] + [(m, m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE")]
    )
    path = forms.CharField(required=False, help_text="http request: path, e.g. /tickets")
    body = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="http request (POST, PUT, PATCH): what it sends as JSON, a CEL expression, "
        "e.g. {'amount': steps.decide.amount}",
    )
    expression = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="transform"
    )
    condition = forms.CharField(required=False, help_text="branch: condition")
    then = forms.CharField(required=False, help_text="branch: step if true")
    else_ = forms.CharField(required=False, label="Else", help_text="branch: step if false")
    provider = forms.CharField(required=False, help_text="AI prompt: provider, as the AI register names it")
    model = forms.CharField(required=False, help_text="AI prompt: model id, as the AI register names it")
    system = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Instructions",
        help_text="AI prompt: the system prompt (never holds run data)",
    )
    prompt = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="AI prompt: template"
    )
    data = forms.CharField(
        required=False,
        help_text="AI prompt: what goes into the prompt's data slot, a CEL expression (empty: the run's input)",
    )
    validators = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='AI prompt: checks the output must pass, e.g. [{"expression": "output.amount <= 100", '
        '"message": "Above 100 needs a person."}]',
    )
    routes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='AI prompt: the next steps the output may choose, e.g. {"field": "action", '
        '"next": {"refund": "pay", "escalate": "escalate"}} (instead of Next)',
    )
    impact = forms.ChoiceField(
        required=False,
        choices=[("", "—"), ("low", "low"), ("high", "high: a person reviews every decision")],
        help_text="AI prompt",
    )
    decides_about_people = forms.BooleanField(
        required=False, help_text="AI prompt: needs a current, passing bias test of the model"
    )
    reviewer_role = forms.CharField(
        required=False, help_text="AI prompt: role that reviews decisions (empty: compliance_officer)"
    )
    review_hours = forms.IntegerField(
        required=False, min_value=1, max_value=720, help_text="AI prompt: hours a review may wait (empty: 72)"
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
    timeout_hours = forms.IntegerField(
        required=False, min_value=1, max_value=720, help_text="human approval: hours it may wait (empty: 72)"
    )
    on_timeout = forms.ChoiceField(
        required=False,
        choices=[("", "—"), ("reject", "reject"), ("approve", "approve")],
        help_text="human approval: what the deadline decides (empty: reject)",
    )
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

    def step_type(self) -> str | None:
        """The type chosen in the form as posted (or as loaded): its fields are the ones shown."""
        chosen = self.data.get(self.add_prefix("type")) if self.is_bound else self.initial.get("type")
        return chosen if chosen in STEP_FIELDS else None

    def typed_fields(self) -> list[tuple]:
        """Every field with whether it belongs to the chosen type: the page renders them all and
        hides the others (``hidden``), so a change of type shows its fields at once with a line of
        script, and after *Update the form* without one; what was typed is never dropped."""
        chosen = self.step_type()
        own = {"id", "type", "ORDER", "DELETE"}
        if chosen:
            own |= {"else_" if name == "else" else name for name in STEP_FIELDS[chosen]}
        rows = []
        for field in self:
            types = [
                t
                for t, names in STEP_FIELDS.items()
                if field.name in {"else_" if n == "else" else n for n in names}
            ]
            rows.append((field, field.name in own, " ".join(types)))
        return rows

    def to_step(self) -> dict:
        data = self.cleaned_data
        step = {"id": data["id"], "type": data["type"]}
        for name in STEP_FIELDS[data["type"]]:
            value = data.get("else_" if name == "else" else name)
            if name == "next":
                step["next"] = value or None
            elif value not in ("", None, False):
                step[name] = value
        return step


# No empty row is appended: a step is added by the editor's explicit *Add a step* action.
StepFormSet = formset_factory(
    StepForm, extra=0, can_order=True, can_delete=True, max_num=100, validate_max=True
)


def with_added_step(data, prefix: str = "steps"):
    """A copy of the posted editor with one more (empty) step row, nothing validated or saved."""
    data = data.copy()
    key = f"{prefix}-TOTAL_FORMS"
    try:
        total = int(data.get(key, 0))
    except (TypeError, ValueError):
        total = 0
    data[key] = str(min(max(total, 0), 99) + 1)
    return data


def error_summary(*forms_and_sets) -> list[tuple[str, str, str]]:
    """(field id, label, message) for every error of the editor, in page order, for the summary
    at the top of the page that links to each field."""
    rows = []
    for item in forms_and_sets:
        if item is None:
            continue
        if hasattr(item, "forms"):  # a formset: its own errors, then each row's
            for message in item.non_form_errors():
                rows.append(("steps", "Steps", message))
            for number, form in enumerate(item.forms, start=1):
                rows += _form_errors(form, f"Step {number}")
        else:
            rows += _form_errors(item, "")
    return rows


def _form_errors(form, where: str) -> list[tuple[str, str, str]]:
    rows = []
    for name, messages in form.errors.items():
        if name == "__all__":
            anchor, label = "", where or "The form"
        else:
            field = form[name] if name in form.fields else None
            anchor = field.id_for_label if field is not None else ""
            label = (
                f"{where}: {field.label}" if where and field is not None else (field.label if field else name)
            )
        rows += [(anchor, label, message) for message in messages]
    return rows


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
        "input_schema": json.dumps(definition["input_schema"]) if "input_schema" in definition else "",
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
    definition = {"trigger": trigger, "steps": [form.to_step() for form in rows]}
    if data.get("input_schema") not in ("", None):
        definition["input_schema"] = data["input_schema"]
    return definition, rows


class JsonDefinitionForm(forms.Form):
    """The expert view: the whole definition as JSON."""

    summary = forms.CharField(
        max_length=300,
        help_text="One line: what this change does and why.",
        validators=[validate_display_name],
    )
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
            path, _, text = message.partition(": ")
            field = {"trigger.cron": "trigger_cron", "trigger.path": "trigger_path"}.get(path, "trigger_type")
            change_form.add_error(field, text or message)
        else:
            change_form.add_error(None, message)
