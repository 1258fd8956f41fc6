"""SIEM sinks, their secrets (in the secrets store), their export cursors and dead letters."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from governance.crypto.fields import EncryptedTextField


class SinkKind(models.TextChoices):
    SYSLOG = "syslog", "Syslog over TLS (RFC 5424/5425)"
    SPLUNK_HEC = "splunk_hec", "Splunk HTTP Event Collector"
    ELASTIC = "elastic", "Elastic / OpenSearch _bulk"
    DATADOG = "datadog", "Datadog logs intake"
    WEBHOOK = "webhook", "HTTPS JSON webhook (HMAC-signed)"


class SinkFormat(models.TextChoices):
    OCSF = "ocsf", "OCSF 1.5.0 (JSON)"
    CEF = "cef", "CEF (ArcSight Common Event Format)"


class SinkStatus(models.TextChoices):
    ACTIVE = "active", "Delivering"
    FAILING = "failing", "Failing: retrying with backoff"
    PAUSED = "paused", "Paused: the sink refused our credentials"
    DISABLED = "disabled", "Disabled"


class Sink(models.Model):
    """A destination the ledger is streamed to, for one organisation.

    ``endpoint`` is an https URL (HTTP sinks) or ``host:port`` (syslog over TLS). The sink's
    secret (token, API key, HMAC key, client key) is a ``SinkSecret`` in the secrets store; this
    row holds no credential. ``options`` are the kind's non-secret settings (index, source type,
    the private CA's PEM, the client certificate's PEM). Status changes only through
    ``audit.siem.services``; every change is a ledger event.
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=SinkKind.choices)
    format = models.CharField(max_length=10, choices=SinkFormat.choices, default=SinkFormat.OCSF)
    endpoint = models.CharField(max_length=500)
    options = models.JSONField(default=dict, blank=True)
    batch_size = models.PositiveIntegerField(default=500)
    status = models.CharField(max_length=16, choices=SinkStatus.choices, default=SinkStatus.ACTIVE)
    status_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="siem_sink_name_per_organization")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class SinkSecret(models.Model):
    """The secret of a sink (Splunk token, Elastic API key, Datadog API key, webhook HMAC key,
    syslog client key), in the secrets store: no foreign key leaves it, so the sink is an id.
    Encrypted under the platform's *credentials* data key; only its fingerprint is shown."""

    # Lives in the secrets store: see governance.core.dbrouters.STORE_MODELS.

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sink_id = models.BigIntegerField(unique=True)
    value = EncryptedTextField(purpose="credentials", workspace_field=None, null=True)
    fingerprint = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"secret of sink {self.sink_id} ({self.fingerprint})"


class SinkCursor(models.Model):
    """Where a sink's export stands: ``position`` is the last ledger sequence fully acknowledged
    (every event up to it delivered or dead-lettered). A pump holds the lease (``lease_owner``
    until ``lease_until``) while it sends, and advances ``position`` by compare-and-set, so two
    workers never both advance it. Pump bookkeeping, not a change of record: no ledger event."""

    sink = models.OneToOneField(Sink, on_delete=models.CASCADE, primary_key=True, related_name="cursor")
    position = models.BigIntegerField(default=0)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_delivered_at = models.DateTimeField(null=True, blank=True)
    delivered = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"cursor of sink {self.sink_id} at {self.position}"


class DeadLetterState(models.TextChoices):
    OPEN = "open", "Open: not delivered"
    REPLAY_REQUESTED = "replay_requested", "Replay requested"
    REPLAYED = "replayed", "Replayed: delivered"
    ACKNOWLEDGED = "acknowledged", "Acknowledged: will not be delivered"


class DeadLetter(models.Model):
    """Ledger events a sink would not take (after retries, or refused one by one): the ledger
    range ``first_sequence``..``last_sequence`` (the events are the ledger's; nothing is copied).
    An administrator replays it (the pump sends the range again) or acknowledges it."""

    sink = models.ForeignKey(Sink, on_delete=models.PROTECT, related_name="dead_letters")
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+")
    first_sequence = models.BigIntegerField()
    last_sequence = models.BigIntegerField()
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500)
    state = models.CharField(max_length=20, choices=DeadLetterState.choices, default=DeadLetterState.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        if self.first_sequence == self.last_sequence:
            return f"{self.sink.name}: event #{self.first_sequence}"
        return f"{self.sink.name}: events #{self.first_sequence}–#{self.last_sequence}"

    @property
    def count(self) -> int:
        return self.last_sequence - self.first_sequence + 1
