"""Attribute policies (Cedar text, governed like code) and on-call overrides (break-glass)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Policy(models.Model):
    """A named set of Cedar policies, in force once a second compliance officer approved it.

    ``organization`` empty means a policy shipped with the portal, in force for every
    organisation. Policies only ever forbid: roles and grants say what may be done, policies
    narrow it (a forbid wins). ``disabled_workspaces`` switches a policy off where it does not
    apply. The text and the switches change only through approved ``PolicyChange`` rows.
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.PROTECT, null=True, blank=True, related_name="policies"
    )
    name = models.SlugField(max_length=80, help_text="e.g. production-business-hours")
    description = models.TextField(blank=True)
    text = models.TextField(help_text="Cedar policies (forbid … when { … };)")
    enabled = models.BooleanField(default=True)
    disabled_workspaces = models.ManyToManyField("tenancy.Workspace", blank=True, related_name="+")
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="access_policy_name_unique"),
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(organization__isnull=True),
                name="access_policy_shipped_name_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ChangeStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a second officer"
    APPROVED = "approved", "Approved and in force"
    REJECTED = "rejected", "Rejected"


class PolicyChange(models.Model):
    """A proposed new state of a policy (or a new policy); applied only when another officer approves."""

    policy = models.ForeignKey(
        Policy, on_delete=models.PROTECT, null=True, blank=True, related_name="changes"
    )
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+")
    name = models.SlugField(max_length=80)
    description = models.TextField(blank=True)
    text = models.TextField()
    enabled = models.BooleanField(default=True)
    disabled_workspaces = models.ManyToManyField("tenancy.Workspace", blank=True, related_name="+")
    reason = models.TextField(help_text="Why this change is needed.")
    status = models.CharField(max_length=16, choices=ChangeStatus.choices, default=ChangeStatus.PENDING)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-proposed_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display()})"


class OnCallOverride(models.Model):
    """A break-glass grant: ``user`` may act on production outside business hours until ``ends_at``.

    Taken by the person on call with a reason, time-limited, notified to the compliance officers,
    recorded in the ledger and shown on the control panel while active; it can be ended early.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="oncall_overrides"
    )
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.PROTECT, related_name="oncall_overrides"
    )
    reason = models.TextField()
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["user", "workspace", "ends_at"], name="access_oncall_active")]

    def __str__(self) -> str:
        return f"on-call override of {self.user} in {self.workspace} until {self.ends_at:%Y-%m-%d %H:%M} UTC"

    def is_active(self, at=None) -> bool:
        at = at or timezone.now()
        return self.ended_at is None and self.starts_at <= at < self.ends_at
