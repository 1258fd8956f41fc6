"""Integrations, requests to connect them, connector types and the network allow-list."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Sensitivity(models.TextChoices):
    NONE = "none", "None"
    FINANCIAL = "financial", "Financial system"
    HR = "hr", "HR system"


class Integration(models.Model):
    """A connected system a workflow step may call (CRM, HRIS, ERP, an AI provider).

    Steps refer to it by ``slug`` within the same workspace. Its sensitivity decides which
    approvals a change that adds it needs.
    """

    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.PROTECT, related_name="integrations")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60)
    kind = models.CharField(max_length=40, help_text="e.g. crm, hris, erp, ai_provider")
    sensitivity = models.CharField(max_length=16, choices=Sensitivity.choices, default=Sensitivity.NONE)
    connector = models.ForeignKey(
        "ConnectorType", on_delete=models.PROTECT, null=True, blank=True, related_name="integrations"
    )
    # Checked by ``governance.core.outbound.boundary.endpoint_check`` in the services, not by a URL validator:
    # the refusal must say why (http, loopback, private, metadata address ...).
    endpoint_url = models.CharField("endpoint URL", max_length=2048, blank=True)
    spki_pins = models.JSONField(
        "SPKI pins",
        default=list,
        blank=True,
        help_text="Base64 SHA-256 hashes of the server's SubjectPublicKeyInfo; empty: no pinning.",
    )

    class Meta:
        ordering = ["workspace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="workflows_integration_slug")
        ]

    def __str__(self) -> str:
        return self.name


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the manager"
    CONNECTED = "connected", "Connected"
    REJECTED = "rejected", "Rejected"


class IntegrationRequest(models.Model):
    """A request to connect an integration. Financial and HR systems wait for the requester's
    manager to approve (the sensitive-integration-manager-approval policy); others connect at once."""

    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60)
    kind = models.CharField(max_length=40)
    sensitivity = models.CharField(max_length=16, choices=Sensitivity.choices, default=Sensitivity.NONE)
    reason = models.TextField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    integration = models.ForeignKey(
        Integration, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"connect {self.name} ({self.get_status_display().lower()})"


class VettingStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    BLOCKED = "blocked", "Blocked"


class ConnectorType(models.Model):
    """A kind of connector an organisation's integrations may use (a vendor's CRM API, an AI provider).

    It records who maintains it and how it was vetted; only an approved connector type may back a
    new integration. The vetting fields change only through ``connector_type_vet``.
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.PROTECT, related_name="connector_types"
    )
    code = models.SlugField(max_length=60)
    name = models.CharField(max_length=120)
    maintainer = models.CharField(
        max_length=200, help_text="Who maintains it: the vendor, a team, or a named person."
    )
    documentation_url = models.URLField("documentation URL", max_length=500, blank=True)
    vetting_status = models.CharField(
        max_length=16, choices=VettingStatus.choices, default=VettingStatus.PENDING, editable=False
    )
    vetting_note = models.TextField(blank=True, editable=False)
    vetted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    vetted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["organization", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="workflows_connector_code")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_vetting_status_display().lower()})"


class NetworkAllowRule(models.Model):
    """An administrator's exception to the network boundary: integrations of the organisation may
    reach this host name, or addresses in this network, although they are internal.

    ``destination`` is a host name (matched exactly, case-insensitively) or a CIDR such as
    ``10.20.0.0/16`` (a single address is stored as a /32 or /128 network).
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.PROTECT, related_name="network_allow_rules"
    )
    destination = models.CharField(max_length=253, help_text="A host name or a network in CIDR notation.")
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["organization", "destination"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "destination"], name="workflows_allow_rule_destination"
            )
        ]

    def __str__(self) -> str:
        return self.destination
