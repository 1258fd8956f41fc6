"""Changes to SIEM sinks and dead letters: one service per use case, each writing its ledger
event in the same transaction (the sink's secret, in the secrets store, commits with it)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import Outcome
from audit.services import audit_event_record, audited_transaction
from audit.siem.events import SiemEvent
from audit.siem.models import (
    DeadLetter,
    DeadLetterState,
    Sink,
    SinkCursor,
    SinkFormat,
    SinkKind,
    SinkSecret,
    SinkStatus,
)
from audit.siem.transports import host_for_url, split_host_port
from governance.access.decision import require
from governance.core.outbound.boundary import endpoint_check
from governance.core.redaction import secret_register
from governance.core.text import checked_reason, text_refusal
from governance.crypto.keyring import active_key

STORE = "secrets"
ACTION = "organization.manage"
MAX_SECRET_CHARS = 16_000  # a PEM private key fits
MAX_BATCH = 5000
# Options each kind understands (all optional); anything else is refused.
OPTIONS: dict[str, frozenset[str]] = {
    SinkKind.SYSLOG: frozenset({"ca_pem", "client_cert_pem", "hostname", "spki_pins"}),
    SinkKind.SPLUNK_HEC: frozenset({"ca_pem", "index", "sourcetype", "host", "ack", "spki_pins"}),
    SinkKind.ELASTIC: frozenset({"ca_pem", "index", "auth", "spki_pins"}),
    SinkKind.DATADOG: frozenset({"ca_pem", "service", "hostname", "tags", "spki_pins"}),
    SinkKind.WEBHOOK: frozenset({"ca_pem", "spki_pins"}),
}
EDITABLE = ("name", "format", "endpoint", "options", "batch_size")


def secret_fingerprint(value: str) -> str:
    """A keyed fingerprint of a sink secret (an HMAC under the platform's credentials key)."""
    key = active_key(None, "credentials")
    mac_key = hashlib.sha256(b"fingerprint" + key.aead.encrypt(bytes(12), b"fingerprint-key", b"")).digest()
    return "fp:" + hmac.new(mac_key, value.encode(), hashlib.sha256).hexdigest()[:16]


def _text(errors: dict[str, str], field: str, value: Any, *, limit: int, required: bool = True) -> str:
    if not isinstance(value, str):
        errors[field] = "Enter text."
        return ""
    value = value.strip()
    if required and not value:
        errors[field] = "This field is required."
    elif len(value) > limit:
        errors[field] = f"At most {limit:,} characters."
    elif refusal := text_refusal(value):
        errors[field] = refusal
    elif any(ord(ch) < 32 or 0x202A <= ord(ch) <= 0x202E or 0x2066 <= ord(ch) <= 0x2069 for ch in value):
        errors[field] = "Remove the control or bidirectional-override characters."
    return value


def sink_errors(*, organization, kind: str, fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The cleaned fields of a sink, and field errors (empty when acceptable)."""
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    if kind not in SinkKind.values:
        errors["kind"] = "Choose one of the sink kinds offered."
    if "name" in fields:
        cleaned["name"] = _text(errors, "name", fields["name"], limit=100)
    if "format" in fields:
        if fields["format"] not in SinkFormat.values:
            errors["format"] = "Choose OCSF or CEF."
        cleaned["format"] = fields["format"]
    if "endpoint" in fields:
        endpoint = _text(errors, "endpoint", fields["endpoint"], limit=500)
        if endpoint and "endpoint" not in errors and kind in SinkKind.values:
            try:
                if kind == SinkKind.SYSLOG:
                    host, port = split_host_port(endpoint)
                    endpoint_check(
                        f"https://{host_for_url(host)}:{port}/",
                        organization=organization,
                        require_resolution=False,
                    )
                else:
                    endpoint_check(endpoint, organization=organization, require_resolution=False)
            except ValueError as error:
                errors["endpoint"] = str(error)
            except ValidationError as error:
                errors["endpoint"] = " ".join(error.messages)
        cleaned["endpoint"] = endpoint
    if "options" in fields:
        options = fields["options"] if fields["options"] is not None else {}
        if not isinstance(options, dict):
            errors["options"] = "Give the options as a JSON object."
        else:
            unknown = sorted(set(options) - OPTIONS.get(kind, frozenset()))
            if unknown:
                errors["options"] = f"Unknown options for this kind: {', '.join(map(repr, unknown))[:300]}."
            for key, value in options.items():
                if key in ("ack",) and not isinstance(value, bool):
                    errors["options"] = "ack is true or false."
                elif key == "spki_pins" and not isinstance(value, list):
                    errors["options"] = "spki_pins is a list of base64 SHA-256 hashes."
                elif key not in ("ack", "spki_pins") and (
                    not isinstance(value, str) or text_refusal(value) or len(value) > 20_000
                ):
                    errors["options"] = f"{key} must be text without NUL (at most 20,000 characters)."
            if options.get("auth") not in (None, "apikey", "basic"):
                errors["options"] = "auth is apikey or basic."
        cleaned["options"] = options
    if "batch_size" in fields:
        size = fields["batch_size"]
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_BATCH:
            errors["batch_size"] = f"Between 1 and {MAX_BATCH:,} events."
        cleaned["batch_size"] = size
    return cleaned, errors


def _secret(value: Any, *, required: bool) -> str | None:
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({"secret": "Enter the sink's secret (token, API key, HMAC key or client key)."})
    if len(value) > MAX_SECRET_CHARS:
        raise ValidationError({"secret": f"At most {MAX_SECRET_CHARS:,} characters."})
    if refusal := text_refusal(value):
        raise ValidationError({"secret": refusal})
    secret_register(value)
    return value


def secret_clean(value: Any) -> str:
    """A sink secret as given, or a ValidationError on ``secret``."""
    return _secret(value, required=True)


def _store_secret(sink: Sink, value: str) -> str:
    fingerprint = secret_fingerprint(value)
    secret = SinkSecret.objects.using(STORE).filter(sink_id=sink.pk).first() or SinkSecret(sink_id=sink.pk)
    secret.value = value
    secret.fingerprint = fingerprint
    secret.created_at = timezone.now()
    secret.save(using=STORE)
    return fingerprint


def sink_secret(sink: Sink) -> str:
    """The sink's secret, decrypted (for the pump only); empty when it has none."""
    row = SinkSecret.objects.using(STORE).filter(sink_id=sink.pk).first()
    return (row.value or "") if row else ""


def sink_secret_fingerprint(sink: Sink) -> str:
    row = SinkSecret.objects.using(STORE).filter(sink_id=sink.pk).only("fingerprint").first()
    return row.fingerprint if row else ""


def _shown(sink: Sink) -> dict[str, Any]:
    return {
        "sink": sink.pk,
        "name": sink.name,
        "kind": sink.kind,
        "format": sink.format,
        "endpoint": sink.endpoint.split("?", 1)[0],
        "batch_size": sink.batch_size,
        "options": sorted(sink.options),
    }


def sink_create(
    *,
    actor,
    organization,
    name: str,
    kind: str,
    endpoint: str,
    secret: str,
    format: str = SinkFormat.OCSF,
    options: dict | None = None,
    batch_size: int = 500,
) -> Sink:
    """A new sink of ``organization``; its export starts at the beginning of the ledger."""
    cleaned, errors = sink_errors(
        organization=organization,
        kind=kind,
        fields={
            "name": name,
            "format": format,
            "endpoint": endpoint,
            "options": options,
            "batch_size": batch_size,
        },
    )
    if not errors and Sink.objects.filter(organization=organization, name=cleaned["name"]).exists():
        errors["name"] = "The organisation already has a sink of that name."
    if errors:
        raise ValidationError(errors)
    value = _secret(secret, required=True)
    active_key(None, "credentials")  # created (and committed) before the two transactions
    with transaction.atomic(using=STORE), audited_transaction():
        require(actor, ACTION, organization, fresh=True)
        sink = Sink.objects.create(organization=organization, kind=kind, **cleaned)
        SinkCursor.objects.create(sink=sink)
        fingerprint = _store_secret(sink, value)
        audit_event_record(
            action=SiemEvent.SINK_CREATED,
            actor=actor,
            target=sink,
            organization_id=organization.pk,
            data={**_shown(sink), "secret_fingerprint": fingerprint},
        )
    return sink


def sink_update(*, actor, sink: Sink, secret: str | None = None, **fields: Any) -> Sink:
    """Change a sink's settings (``EDITABLE``) and, when given, its secret; the cursor stays."""
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed."))
    cleaned, errors = sink_errors(organization=sink.organization, kind=sink.kind, fields=fields)
    if (
        "name" in cleaned
        and not errors
        and (
            Sink.objects.filter(organization_id=sink.organization_id, name=cleaned["name"])
            .exclude(pk=sink.pk)
            .exists()
        )
    ):
        errors["name"] = "The organisation already has a sink of that name."
    if errors:
        raise ValidationError(errors)
    value = _secret(secret, required=False)
    active_key(None, "credentials")
    with transaction.atomic(using=STORE), audited_transaction():
        locked = Sink.objects.select_for_update().get(pk=sink.pk)
        require(actor, ACTION, locked, fresh=True)
        before = _shown(locked)
        changed = [name for name, value_ in cleaned.items() if getattr(locked, name) != value_]
        for name in changed:
            setattr(locked, name, cleaned[name])
        resume = value is not None and locked.status == SinkStatus.PAUSED
        if resume:
            locked.status, locked.status_message = SinkStatus.ACTIVE, ""
            changed += ["status", "status_message"]
        if changed:
            locked.save(update_fields=changed)
        data: dict[str, Any] = {"before": before, "after": _shown(locked), "changed": sorted(set(changed))}
        if value is not None:
            data["secret_fingerprint"] = _store_secret(locked, value)
            if resume:
                SinkCursor.objects.filter(sink=locked).update(failures=0, next_attempt_at=None)
        audit_event_record(
            action=SiemEvent.SINK_SECRET_SET if value is not None and not changed else SiemEvent.SINK_UPDATED,
            actor=actor,
            target=locked,
            organization_id=locked.organization_id,
            data=data,
        )
    return locked


def sink_set_enabled(*, actor, sink: Sink, enabled: bool) -> Sink:
    """Enable (resume, also after a pause) or disable a sink; its cursor stays where it is."""
    with audited_transaction():
        locked = Sink.objects.select_for_update().get(pk=sink.pk)
        require(actor, ACTION, locked, fresh=True)
        before = locked.status
        locked.status = SinkStatus.ACTIVE if enabled else SinkStatus.DISABLED
        locked.status_message = ""
        locked.save(update_fields=["status", "status_message"])
        if enabled:
            SinkCursor.objects.filter(sink=locked).update(failures=0, next_attempt_at=None)
        audit_event_record(
            action=SiemEvent.SINK_ENABLED if enabled else SiemEvent.SINK_DISABLED,
            actor=actor,
            target=locked,
            organization_id=locked.organization_id,
            data={"sink": locked.pk, "before": before, "after": locked.status},
        )
    return locked


def sink_status_set(*, sink_id: int, status: str, message: str) -> None:
    """The pump's report of a sink's health (paused on 401/403, failing while retrying, active
    again): a ledger event when the status changes, nothing when it stays."""
    with audited_transaction():
        sink = Sink.objects.select_for_update().get(pk=sink_id)
        if sink.status == SinkStatus.DISABLED:
            return
        if sink.status == status:
            return  # the latest error is on the cursor; the sink's row changes with its status only
        before = sink.status
        sink.status, sink.status_message = status, message[:500]
        sink.save(update_fields=["status", "status_message"])
        action = {
            SinkStatus.PAUSED: SiemEvent.SINK_PAUSED,
            SinkStatus.FAILING: SiemEvent.SINK_FAILING,
        }.get(status, SiemEvent.SINK_RECOVERED)
        audit_event_record(
            action=action,
            actor=None,
            target=sink,
            organization_id=sink.organization_id,
            outcome=Outcome.FAILED if status != SinkStatus.ACTIVE else Outcome.SUCCESS,
            data={"sink": sink.pk, "before": before, "after": status, "message": message[:500]},
        )


def dead_letter_create(
    *, sink: Sink, first_sequence: int, last_sequence: int, attempts: int, error: str
) -> DeadLetter:
    """Record events a sink would not take; in the pump's transaction, with its ledger event."""
    letter = DeadLetter.objects.create(
        sink=sink,
        organization_id=sink.organization_id,
        first_sequence=first_sequence,
        last_sequence=last_sequence,
        attempts=attempts,
        error=error[:500],
    )
    audit_event_record(
        action=SiemEvent.DEAD_LETTERED,
        actor=None,
        target=letter,
        organization_id=sink.organization_id,
        outcome=Outcome.FAILED,
        data={
            "sink": sink.pk,
            "first_sequence": first_sequence,
            "last_sequence": last_sequence,
            "attempts": attempts,
            "error": error[:500],
        },
    )
    return letter


def dead_letter_replay_request(*, actor, letter: DeadLetter, reason: str) -> DeadLetter:
    """Ask the pump to send a dead letter's events again (by ledger sequence, never by time)."""
    reason = checked_reason(reason)
    with audited_transaction():
        locked = DeadLetter.objects.select_for_update().get(pk=letter.pk)
        require(actor, ACTION, locked, fresh=True)
        if locked.state not in (DeadLetterState.OPEN, DeadLetterState.ACKNOWLEDGED):
            raise ValidationError({"state": f"This dead letter is {locked.get_state_display().lower()}."})
        before = locked.state
        locked.state = DeadLetterState.REPLAY_REQUESTED
        locked.save(update_fields=["state"])
        audit_event_record(
            action=SiemEvent.DEAD_LETTER_REPLAY_REQUESTED,
            actor=actor,
            target=locked,
            organization_id=locked.organization_id,
            data={"dead_letter": locked.pk, "sink": locked.sink_id, "before": before, "reason": reason},
        )
    return locked


def dead_letter_acknowledge(*, actor, letter: DeadLetter, reason: str) -> DeadLetter:
    """Accept that a dead letter's events will not reach the sink (said, never silent)."""
    reason = checked_reason(reason)
    with audited_transaction():
        locked = DeadLetter.objects.select_for_update().get(pk=letter.pk)
        require(actor, ACTION, locked, fresh=True)
        if locked.state != DeadLetterState.OPEN:
            raise ValidationError({"state": f"This dead letter is {locked.get_state_display().lower()}."})
        locked.state, locked.resolved_at = DeadLetterState.ACKNOWLEDGED, timezone.now()
        locked.save(update_fields=["state", "resolved_at"])
        audit_event_record(
            action=SiemEvent.DEAD_LETTER_ACKNOWLEDGED,
            actor=actor,
            target=locked,
            organization_id=locked.organization_id,
            data={"dead_letter": locked.pk, "sink": locked.sink_id, "reason": reason},
        )
    return locked


def dead_letter_replayed(*, letter_id: int, delivered: bool, error: str = "") -> None:
    """The pump's result of a replay: delivered (closed, with its ledger event) or open again."""
    with audited_transaction():
        letter = DeadLetter.objects.select_for_update().get(pk=letter_id)
        if letter.state != DeadLetterState.REPLAY_REQUESTED:
            return
        letter.attempts += 1
        if delivered:
            letter.state, letter.resolved_at = DeadLetterState.REPLAYED, timezone.now()
        else:
            letter.state, letter.error = DeadLetterState.OPEN, error[:500]
        letter.save(update_fields=["state", "resolved_at", "attempts", "error"])
        audit_event_record(
            action=SiemEvent.DEAD_LETTER_REPLAYED,
            actor=None,
            target=letter,
            organization_id=letter.organization_id,
            outcome=Outcome.SUCCESS if delivered else Outcome.FAILED,
            data={
                "dead_letter": letter.pk,
                "sink": letter.sink_id,
                "delivered": delivered,
                "error": error[:500],
            },
        )
