"""The secrets store (the ``secrets`` database; see governance.core.dbrouters): credentials of
integrations, their versions, and the incident runbooks that rotate them all."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from governance.crypto.fields import EncryptedTextField

# The database alias of the secrets store (see governance.core.dbrouters.STORE_MODELS).
STORE = "secrets"


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
