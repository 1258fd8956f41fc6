"""SIEM sinks and their dead letters in the control panel (organisation administrators): set up
a sink (its secret goes to the secrets store and is shown back only as a fingerprint), see its
status and lag, enable or disable it; replay or acknowledge a dead letter, with a reason."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from audit.siem import pump, services
from audit.siem.models import DeadLetter, DeadLetterState, Sink, SinkCursor, SinkStatus
from governance.access.admin_base import GovernedModelAdmin
from governance.core.forms import StorableJSONField


class SinkForm(forms.ModelForm):
    """A sink's settings; the secret is written, never shown (empty on change: keep the current one)."""

    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Splunk HEC token, Elastic API key (or user:password with auth=basic), Datadog API "
        "key, the webhook's HMAC key, or the syslog client certificate's private key (PEM). "
        "Kept in the secrets store; leave empty to keep the current one.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    class Meta:
        model = Sink
        fields = ["name", "kind", "format", "endpoint", "options", "batch_size"]
        field_classes = {"options": StorableJSONField}
        help_texts = {
            "endpoint": "https://… for HTTP sinks (the base URL: /_bulk, /services/collector/event and "
            "/api/v2/logs are added); host:port for syslog over TLS.",
            "options": "JSON, by kind: ca_pem, spki_pins; syslog: client_cert_pem, hostname; Splunk: index, "
            'sourcetype, host, ack (true for indexer acknowledgement); Elastic: index, auth ("apikey" or '
            '"basic"); Datadog: service, hostname, tags.',
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.fields["enabled"].initial = self.instance.status != SinkStatus.DISABLED
            self.fields["kind"].disabled = True
        else:
            self.fields["secret"].required = True

    def clean(self):
        cleaned = super().clean()
        kind = self.instance.kind if not self.instance._state.adding else cleaned.get("kind", "")
        fields = {name: cleaned[name] for name in services.EDITABLE if name in cleaned}
        _, errors = services.sink_errors(organization=self.instance.organization_id, kind=kind, fields=fields)
        for name, message in errors.items():
            if name in self.fields and name not in self.errors:
                self.add_error(name, message)
        secret = cleaned.get("secret")
        if secret:
            try:
                services.secret_clean(secret)
            except ValidationError as error:
                self.add_error("secret", error.message_dict["secret"])
        return cleaned


@admin.register(Sink)
class SinkAdmin(GovernedModelAdmin):
    """Sinks of the administrator's organisation; nobody deletes one (it is disabled)."""

    form = SinkForm
    list_display = ["name", "kind", "format", "status", "delivered_up_to", "lag", "dead_letters_open"]
    list_filter = ["kind", "status"]
    readonly_fields = [
        "status",
        "status_message",
        "delivered_up_to",
        "lag",
        "last_error",
        "secret_fingerprint",
    ]
    fieldsets = [
        (
            None,
            {"fields": ["name", "kind", "format", "endpoint", "secret", "options", "batch_size", "enabled"]},
        ),
        (
            "Delivery",
            {
                "fields": [
                    "status",
                    "status_message",
                    "delivered_up_to",
                    "lag",
                    "last_error",
                    "secret_fingerprint",
                ]
            },
        ),
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = super().get_form(request, obj, change, **kwargs)

        class OrganisationForm(base):
            """A new sink belongs to the administrator's organisation, whose allow-list applies."""

            def __init__(self, *args, **form_kwargs):
                super().__init__(*args, **form_kwargs)
                if self.instance._state.adding and self.instance.organization_id is None:
                    self.instance.organization_id = request.user.organization_id

        return OrganisationForm

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj is not None else self.fieldsets[:1]

    @admin.display(description="delivered up to ledger #")
    def delivered_up_to(self, sink) -> int:
        return SinkCursor.objects.filter(sink=sink).values_list("position", flat=True).first() or 0

    @admin.display(description="lag")
    def lag(self, sink) -> str:
        events, seconds = pump.sink_lag(sink)
        if not events:
            return "up to date"
        shown = "10,000+" if events > 10_000 else f"{events:,}"
        return f"{shown} events, {int(seconds or 0):,} s"

    @admin.display(description="last error")
    def last_error(self, sink) -> str:
        return SinkCursor.objects.filter(sink=sink).values_list("last_error", flat=True).first() or "—"

    @admin.display(description="secret")
    def secret_fingerprint(self, sink) -> str:
        return services.sink_secret_fingerprint(sink) or "—"

    @admin.display(description="open dead letters")
    def dead_letters_open(self, sink) -> int:
        return sink.dead_letters.filter(state=DeadLetterState.OPEN).count()

    def service_save(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in services.EDITABLE if name in form.cleaned_data}
        enabled = form.cleaned_data.get("enabled", True)
        secret = form.cleaned_data.get("secret") or None
        if not change:
            sink = services.sink_create(
                actor=request.user,
                organization=request.user.organization,
                kind=form.cleaned_data["kind"],
                secret=secret,
                **data,
            )
        else:
            sink = services.sink_update(actor=request.user, sink=obj, secret=secret, **data)
        if enabled != (sink.status != SinkStatus.DISABLED):
            sink = services.sink_set_enabled(actor=request.user, sink=sink, enabled=enabled)
        return sink


class DeadLetterForm(forms.ModelForm):
    """Replay the dead letter's events (by ledger sequence) or acknowledge that they will not be
    delivered; either needs a reason, recorded in the ledger."""

    decision = forms.ChoiceField(
        choices=[
            ("replay", "Replay: send these events again"),
            ("acknowledge", "Acknowledge: do not deliver"),
        ]
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    class Meta:
        model = DeadLetter
        fields: list[str] = []


@admin.register(DeadLetter)
class DeadLetterAdmin(GovernedModelAdmin):
    """Events a sink would not take. Created by the pump only; replayed or acknowledged here."""

    form = DeadLetterForm
    list_display = ["__str__", "sink", "state", "count", "attempts", "error", "created_at"]
    list_filter = ["state"]
    list_select_related = ["sink"]
    readonly_fields = [
        "sink",
        "first_sequence",
        "last_sequence",
        "state",
        "attempts",
        "error",
        "created_at",
        "resolved_at",
    ]
    fields = [*readonly_fields, "decision", "reason"]

    def service_save(self, request, obj, form, change):
        reason = form.cleaned_data["reason"]
        if form.cleaned_data["decision"] == "acknowledge":
            return services.dead_letter_acknowledge(actor=request.user, letter=obj, reason=reason)
        return services.dead_letter_replay_request(actor=request.user, letter=obj, reason=reason)
