"""Service accounts: one dedicated, least-privilege machine identity per integration, with hashed,
expiring API tokens."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from workflows.integrations.models import Integration

# The scopes a service account may hold, each mapped to the one portal action it allows. A scope
# never reaches beyond its account's workspace, and no scope opens the control panel.
SERVICE_ACCOUNT_SCOPES: dict[str, str] = {
    "workflows:read": "workflow.view",
    "executions:read": "execution.view",
    "executions:trigger": "execution.trigger",
    # What the steps of the workspace's workflows may do through the account's own integration.
    "integrations:read": "integration.read",
    "integrations:write": "integration.write",
}
# The rotation period is never longer than this, whatever the settings say.
MAX_ROTATION_DAYS = 90


def validate_service_account_scopes(value) -> None:
    """A non-empty list of distinct scopes from ``SERVICE_ACCOUNT_SCOPES``."""
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
