"""The ledger's rows. Written once, in the transaction of the change they describe."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from audit.events import Category


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    DENIED = "denied", "Denied"
    FAILED = "failed", "Failed"


class ActorType(models.TextChoices):
    USER = "user", "User"
    SERVICE_ACCOUNT = "service_account", "Service account"
    SYSTEM = "system", "System"


class AuditEvent(models.Model):
    """Who did what, where, when, with what outcome.

    References to users, organisations and workspaces carry no database constraint and are
    never cascaded: deleting the thing an event talks about must not touch the event. The
    actor's and target's names are copied so that the record reads the same years later.
    """

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    category = models.CharField(max_length=32, choices=Category.choices)
    action = models.CharField(max_length=100)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    actor_type = models.CharField(max_length=20, choices=ActorType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=254, blank=True)
    organization = models.ForeignKey(
        "tenancy.Organization",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    workspace = models.ForeignKey(
        "tenancy.Workspace",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=254, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["action", "-id"], name="audit_event_action"),
            models.Index(fields=["workspace", "-id"], name="audit_event_workspace"),
            models.Index(fields=["organization", "-id"], name="audit_event_organization"),
            models.Index(fields=["actor", "-id"], name="audit_event_actor"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor_label or self.actor_type}"
