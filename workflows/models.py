"""Workflows, their immutable versions, change requests with approvals, and integrations."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from guardian.models import UserObjectPermissionBase

from governance.core.regions import DataRegion
from governance.crypto.fields import EncryptedTextField


class Environment(models.TextChoices):
    DEVELOPMENT = "development", "Development"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


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
    # Checked by ``workflows.outbound.endpoint_check`` in the services, not by a URL validator:
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


class WorkflowStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    QUARANTINED = "quarantined", "Quarantined"


class Workflow(models.Model):
    """An automation of one workspace. What it does is its active version's definition."""

    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.PROTECT, related_name="workflows")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80)
    description = models.TextField(blank=True)
    environment = models.CharField(
        max_length=16, choices=Environment.choices, default=Environment.DEVELOPMENT
    )
    data_region = models.CharField(max_length=8, choices=DataRegion.choices)
    handles_pii = models.BooleanField("handles personal data", default=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_workflows"
    )
    status = models.CharField(max_length=16, choices=WorkflowStatus.choices, default=WorkflowStatus.DRAFT)
    active_version = models.ForeignKey(
        "WorkflowVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workspace", "name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "slug"], name="workflows_workflow_slug")]

    def __str__(self) -> str:
        return self.name


class WorkflowVersion(models.Model):
    """One immutable, numbered definition of a workflow, identified by its content hash."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    content_hash = models.CharField(max_length=64)
    based_on = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="workflows_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.workflow} v{self.number}"


class ChangeState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    APPLIED = "applied", "Applied"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    SUPERSEDED = "superseded", "Superseded"


class ChangeRequest(models.Model):
    """A proposed version of a workflow on its way to becoming active.

    ``state`` changes only through ``workflows.transitions`` (called from services, under a row
    lock). ``required_tiers`` is derived from the diff and the policies when it is submitted.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="changes")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="changes")
    base_version = models.ForeignKey(
        WorkflowVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="authored_changes"
    )
    summary = models.CharField(max_length=300)
    state = models.CharField(
        max_length=16, choices=ChangeState.choices, default=ChangeState.DRAFT, editable=False
    )
    required_tiers = models.JSONField(default=list, editable=False)
    diff = models.JSONField(default=dict, editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "submitted_at"], name="workflows_change_inbox")]

    def __str__(self) -> str:
        return f"{self.workflow}: {self.summary}"


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class Approval(models.Model):
    """One reviewer's decision on one tier of a change, with the checklist answers."""

    change = models.ForeignKey(ChangeRequest, on_delete=models.PROTECT, related_name="approvals")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    tier = models.CharField(max_length=32)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField()
    checklist = models.JSONField(default=dict, blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["decided_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["change", "tier"],
                condition=models.Q(decision="approve"),
                name="workflows_approval_one_per_tier",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} {self.tier} by {self.reviewer}"


class WorkflowUserGrant(UserObjectPermissionBase):
    """A per-object permission of one user on one workflow (django-guardian, direct foreign key),
    e.g. a builder of another team allowed to edit this workflow only."""

    content_object = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="user_grants")

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False
        verbose_name = "workflow grant"


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


# --- Service accounts --------------------------------------------------------------------------
# One dedicated, least-privilege machine identity per integration, with hashed, expiring API tokens.

# The scopes a service account may hold, each mapped to the one portal action it allows. A scope
# never reaches beyond its account's workspace, and no scope opens the control panel.
SERVICE_ACCOUNT_SCOPES: dict[str, str] = {
    "workflows:read": "workflow.view",
    "executions:read": "execution.view",
    "executions:trigger": "execution.trigger",
}
# The rotation period is never longer than this, whatever the settings say.
MAX_ROTATION_DAYS = 90


def validate_service_account_scopes(value) -> None:
    """A non-empty list of distinct scopes from ``SERVICE_ACCOUNT_SCOPES``."""
    from django.core.exceptions import ValidationError

    if not isinstance(value, list) or not value or not all(isinstance(scope, str) for scope in value):
        raise ValidationError("Choose at least one scope.")
    unknown = sorted(set(value) - set(SERVICE_ACCOUNT_SCOPES))
    if unknown:
        raise ValidationError(
            f"Unknown scope(s): {', '.join(unknown)}. Known scopes: {', '.join(SERVICE_ACCOUNT_SCOPES)}."
        )
    if len(set(value)) != len(value):
        raise ValidationError("Each scope is listed once.")


def rotation_ceiling_days() -> int:
    """The longest rotation period allowed now: the setting, capped at ``MAX_ROTATION_DAYS``."""
    return min(MAX_ROTATION_DAYS, settings.SERVICE_ACCOUNT_ROTATION_DAYS)


def validate_rotation_period(value: int) -> None:
    """Between one day and the configured ceiling (which is at most 90 days)."""
    from django.core.exceptions import ValidationError

    ceiling = rotation_ceiling_days()
    if not 1 <= value <= ceiling:
        raise ValidationError(f"Rotate at least every {ceiling} days: choose 1 to {ceiling}.")


class DisabledReason(models.TextChoices):
    DORMANT = "dormant", "Dormant (unused)"
    ROTATION_OVERDUE = "rotation_overdue", "Rotation overdue"
    MANUAL = "manual", "Disabled by hand"
    INCIDENT = "incident", "Incident"


class ServiceAccount(models.Model):
    """The machine identity of exactly one integration, confined to that integration's workspace.

    What it may do is its ``scopes`` (least privilege). Its tokens must be rotated every
    ``rotation_period_days`` (``rotation_due_at`` is the clock); an account unused for too long,
    or whose rotation is overdue, is disabled by the daily sweep, and only a workspace owner
    reactivates it. ``active_since`` restarts the dormancy clock on creation and reactivation.
    """

    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.PROTECT, related_name="service_accounts"
    )
    integration = models.OneToOneField(Integration, on_delete=models.PROTECT, related_name="service_account")
    name = models.CharField(max_length=120)
    scopes = models.JSONField(default=list, validators=[validate_service_account_scopes])
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=20, choices=DisabledReason.choices, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    active_since = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    rotation_period_days = models.PositiveSmallIntegerField(
        default=rotation_ceiling_days, validators=[validate_rotation_period]
    )
    last_rotated_at = models.DateTimeField(null=True, blank=True)
    rotation_due_at = models.DateTimeField()
    # The due date the last rotation warning was about: one warning per rotation cycle.
    rotation_warned_for = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["workspace", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rotation_period_days__gte=1, rotation_period_days__lte=MAX_ROTATION_DAYS),
                name="workflows_serviceaccount_rotation_period",
            ),
            models.CheckConstraint(
                condition=models.Q(is_active=True, disabled_reason="")
                | models.Q(is_active=False, disabled_at__isnull=False) & ~models.Q(disabled_reason=""),
                name="workflows_serviceaccount_disabled_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        super().clean()
        if self.integration_id and self.workspace_id and self.integration.workspace_id != self.workspace_id:
            raise ValidationError({"integration": "The integration belongs to another workspace."})

    @property
    def allowed_actions(self) -> frozenset[str]:
        """The portal actions its scopes allow."""
        return frozenset(
            SERVICE_ACCOUNT_SCOPES[scope] for scope in self.scopes if scope in SERVICE_ACCOUNT_SCOPES
        )

    def restart_rotation_clock(self, at) -> None:
        """Start a new rotation cycle at ``at`` (a token was issued)."""
        from datetime import timedelta

        self.last_rotated_at = at
        self.rotation_due_at = at + timedelta(days=self.rotation_period_days)


class ServiceAccountToken(models.Model):
    """An API token of a service account: ``gpsa_<prefix>_<secret>``, shown once, stored hashed.

    The prefix is public and finds the row; only the SHA-256 digest of the secret is kept. The
    secret is 256 random bits, so a fast hash is right here: there is nothing to guess that a slow,
    salted password hash would protect, and every API request checks one. After a rotation the
    previous token is still accepted until ``grace_until``, so clients switch without downtime.
    """

    service_account = models.ForeignKey(ServiceAccount, on_delete=models.PROTECT, related_name="tokens")
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    grace_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["service_account", "-created_at"]

    def __str__(self) -> str:
        return f"gpsa_{self.prefix}_…"

    def refusal(self, at) -> str | None:
        """Why the token is not accepted at ``at``, or None when it is."""
        if self.revoked_at is not None and self.revoked_at <= at:
            return "revoked"
        if self.expires_at <= at:
            return "expired"
        if self.grace_until is not None and self.grace_until <= at:
            return "superseded"
        return None


# --- The secrets store (the ``secrets`` database; see governance.core.dbrouters) ----------------------


class CredentialStatus(models.TextChoices):
    STAGED = "staged", "Staged: not used yet"
    ACTIVE = "active", "Active"
    GRACE = "grace", "Previous: valid for running executions until its grace ends"
    REVOKED = "revoked", "Revoked: value erased"


class Credential(models.Model):
    """A named secret of an integration (API key, client secret…), kept in the secrets store.

    The store lives in its own database: no foreign key leaves it, so workspace, integration
    and people are held as ids. The values are in ``CredentialVersion`` rows, encrypted under the
    workspace's *credentials* data key, which is not the key of its general data.
    """

    # Lives in the secrets store: see governance.core.dbrouters.STORE_MODELS.

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace_id = models.BigIntegerField(db_index=True)
    integration_id = models.BigIntegerField(db_index=True)
    name = models.CharField(max_length=120)
    rotation_required = models.BooleanField(
        default=False, help_text="Set by the incident runbook: a new value must be staged and promoted."
    )
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["integration_id", "name"], name="credential_name_per_integration")
        ]

    def __str__(self) -> str:
        return self.name


class CredentialVersion(models.Model):
    """One value of a credential. Shown back only as its fingerprint; the value itself is an
    AES-256-GCM ciphertext bound to this row, erased when the version is revoked."""

    # Lives in the secrets store: see governance.core.dbrouters.STORE_MODELS.

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, related_name="versions")
    workspace_id = models.BigIntegerField()  # chooses the data key; equals the credential's
    number = models.PositiveIntegerField()
    value = EncryptedTextField(purpose="credentials", null=True)
    fingerprint = models.CharField(max_length=32)
    status = models.CharField(
        max_length=16, choices=CredentialStatus.choices, default=CredentialStatus.STAGED
    )
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    tested_at = models.DateTimeField(null=True, blank=True)
    test_ok = models.BooleanField(null=True, blank=True)
    test_message = models.CharField(max_length=300, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    promoted_by_id = models.BigIntegerField(null=True, blank=True)
    grace_until = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["credential", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["credential", "number"], name="credential_version_number"),
            models.UniqueConstraint(
                fields=["credential"],
                condition=models.Q(status="active"),
                name="credential_one_active_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.credential} v{self.number} ({self.fingerprint})"


class RunbookStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"


class CredentialRunbook(models.Model):
    """The incident runbook for one workspace: every credential must be replaced, every
    service-account token is revoked, the credentials data key is rotated. A background job works
    through the items (resumable: ``done`` is the next item's index) and writes ``report``."""

    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    status = models.CharField(max_length=16, choices=RunbookStatus.choices, default=RunbookStatus.RUNNING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=list, blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Credential runbook for {self.workspace} ({self.started_at:%Y-%m-%d %H:%M})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.done * 100 // self.total)
