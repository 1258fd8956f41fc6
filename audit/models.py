"""The ledger's rows. Written once, in the transaction of the change they describe."""

from __future__ import annotations

import uuid

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
    """Who did what, where, when, with what outcome: one entry of the append-only ledger.

    ``canonical`` holds the RFC 8785 bytes of the event's content, fixed at insert; the columns
    beside it are the same content, for filtering and display. The sealer later assigns the
    gapless ``sequence`` and the hashes (the only update a row ever takes, enforced by a
    trigger). References to users, organisations and workspaces carry no database constraint
    and never cascade: deleting what an event talks about must not touch the event. Names are
    copied so that the record reads the same years later.
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    category = models.CharField(max_length=32, choices=Category.choices)
    action = models.CharField(max_length=100)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    actor_type = models.CharField(max_length=20, choices=ActorType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the composite (column, -id) indexes below serve every lookup
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=254, blank=True)
    organization = models.ForeignKey(
        "tenancy.Organization",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the composite (column, -id) indexes below serve every lookup
        null=True,
        blank=True,
        related_name="+",
    )
    workspace = models.ForeignKey(
        "tenancy.Workspace",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the composite (column, -id) indexes below serve every lookup
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
    canonical = models.BinaryField(editable=False)
    sequence = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)
    leaf_hash = models.BinaryField(null=True, blank=True, editable=False)
    chain_hash = models.BinaryField(null=True, blank=True, editable=False)
    sealed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The sealer's work queue: only unsealed rows are in this index, so it stays tiny.
            models.Index(
                fields=["id"], condition=models.Q(sequence__isnull=True), name="audit_event_unsealed"
            ),
            models.Index(fields=["category", "-id"], name="audit_event_category"),
            models.Index(fields=["outcome", "-id"], name="audit_event_outcome"),
            models.Index(fields=["action", "-id"], name="audit_event_action"),
            models.Index(fields=["workspace", "-id"], name="audit_event_workspace"),
            models.Index(fields=["organization", "-id"], name="audit_event_organization"),
            # The organisation's own events (no workspace), newest first: what the organisation
            # auditor's ledger lists. Neither index above serves it once a ledger holds several
            # organisations (docs/benchmarks.md, "The organisation's own events").
            models.Index(
                fields=["organization", "-id"],
                condition=models.Q(workspace__isnull=True),
                name="audit_event_organization_own",
            ),
            models.Index(fields=["actor_label", "-id"], name="audit_event_actor"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor_label or self.actor_type}"


class LedgerState(models.Model):
    """The sealer's bookkeeping (one row): tree size, Merkle frontier, chain head.

    It is a cache of what the sealed events imply, trusted by nobody: verification recomputes
    everything from the events and the signed tree heads.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    tree_size = models.BigIntegerField(default=0)
    frontier = models.JSONField(default=dict)
    chain_head = models.BinaryField(default=bytes)
    sealed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"ledger of {self.tree_size} sealed events"


class SignedTreeHead(models.Model):
    """A signed commitment to the first ``tree_size`` sealed events (their Merkle root).

    ``number`` is gapless; the signature (Ed25519, key outside the database) covers the number,
    size, root, time and key id, so a head cannot be edited, replaced or forged.
    """

    number = models.BigIntegerField(unique=True)
    tree_size = models.BigIntegerField()
    root_hash = models.BinaryField()
    issued_at = models.DateTimeField()
    key_id = models.CharField(max_length=64)
    signature = models.BinaryField()

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"tree head #{self.number}: {self.tree_size} events"


class RowChange(models.Model):
    """One row that a statement inserted, changed or deleted in a governed table, captured by a
    database trigger, whoever wrote it (services included; nothing switches the trigger off).

    The database fills ``db_user``, ``transaction_id`` and ``occurred_at``. The sealer links each
    capture to a ledger event (``event``): to the service event of the same transaction that
    names the row, or else to the ``db.row_changed`` event it writes for it. The application role
    may only insert captures; the link is set once, by ``audit_rowchange_settle`` (see
    audit/triggers.py). A capture without a link is still waiting for the sealer.
    """

    table_name = models.CharField(max_length=100)
    operation = models.CharField(max_length=8)
    row_id = models.CharField(max_length=64, blank=True)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    db_user = models.CharField(max_length=100, blank=True)
    application = models.CharField(max_length=100, blank=True)
    actor_hint = models.CharField(max_length=254, blank=True)
    transaction_id = models.BigIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    event = models.ForeignKey(
        AuditEvent,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the index below serves the one lookup from the event (pruning)
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta:
        indexes = [
            # The sealer's work queue: only unlinked captures are in this index.
            models.Index(
                fields=["id"], condition=models.Q(event__isnull=True), name="audit_rowchange_pending"
            ),
            # Pruning an event deletes its captures with it (audit_prune).
            models.Index(fields=["event"], name="audit_rowchange_event"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.table_name} {self.row_id}"


class MerkleTile(models.Model):
    """The Merkle root of sealed events ``index * TILE_SIZE + 1`` to ``(index + 1) * TILE_SIZE``.

    Derived data kept so that inclusion and consistency proofs read a few thousand hashes
    instead of every leaf. A wrong tile cannot forge anything: every proof built from tiles is
    checked against a signed tree head before it is shown.
    """

    TILE_SIZE = 1024

    index = models.BigIntegerField(primary_key=True)
    hash = models.BinaryField()

    def __str__(self) -> str:
        return f"tile {self.index}"


class EvidenceFramework(models.TextChoices):
    SOC2 = "soc2", "SOC 2"
    ISO27001 = "iso27001", "ISO/IEC 27001"
    EU_AI_ACT = "eu_ai_act", "EU AI Act"
    NIST_AI_RMF = "nist_ai_rmf", "NIST AI RMF"


class EvidenceOrderState(models.TextChoices):
    QUEUED = "queued", "Queued"
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


class EvidenceOrder(models.Model):
    """An auditor's request for an evidence package of one workspace and period, and its build.

    One workspace per order: a package proves one workspace's events (see docs/evidence.md); an
    order without a workspace is for the organisation's own events (sign-ins, accounts, SSO, SCIM).
    The period is whole UTC days, ``period_end`` included. State, progress and the file change
    only through the services of ``audit.evidence.orders``; the file lives under
    ``settings.EVIDENCE_DIR`` as ``file_name`` and is served only through a signed link.
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+")
    workspace = models.ForeignKey(
        "tenancy.Workspace",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="Empty: the organisation's own events.",
    )
    period_start = models.DateField("from")
    period_end = models.DateField("to (included)")
    framework = models.CharField(max_length=20, choices=EvidenceFramework.choices, blank=True)
    state = models.CharField(
        max_length=16, choices=EvidenceOrderState.choices, default=EvidenceOrderState.QUEUED
    )
    phase = models.CharField(max_length=40, blank=True)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    file_name = models.CharField(max_length=100, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["requester", "-id"], name="evidence_order_requester")]

    def __str__(self) -> str:
        return f"evidence order #{self.pk}: {self.scope_label} {self.period_start}–{self.period_end}"

    @property
    def scope_label(self) -> str:
        """The workspace's name, or "organisation events" for an order of the organisation's own."""
        return str(self.workspace) if self.workspace_id else "organisation events"

    @property
    def in_progress(self) -> bool:
        return self.state in (EvidenceOrderState.QUEUED, EvidenceOrderState.BUILDING)

    @property
    def percent(self) -> int:
        if self.state == EvidenceOrderState.READY:
            return 100
        return int(100 * self.progress_done / self.progress_total) if self.progress_total else 0


class RetentionFramework(models.TextChoices):
    """Frameworks whose minimum log retention a workspace's policy takes into account
    (the minima and their sources are in ``audit.retention.FRAMEWORK_MINIMA``)."""

    PCI_DSS = "pci_dss", "PCI DSS"
    HIPAA = "hipaa", "HIPAA"
    SOX = "sox", "SOX"
    EU_AI_ACT_HIGH_RISK = "eu_ai_act_high_risk", "EU AI Act (high-risk AI system)"
    SOC2 = "soc2", "SOC 2"
    ISO27001 = "iso27001", "ISO/IEC 27001"


class RetentionPolicy(models.Model):
    """How long a workspace's ledger events are kept at least: the frameworks in scope and an
    optional longer minimum of the organisation's own. The effective period is the longest of
    these and the platform's floor (``audit.retention.workspace_retention`` says it with its
    reasons); a workspace without a row keeps events for the platform's floor."""

    workspace = models.OneToOneField(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="retention_policy"
    )
    frameworks = models.JSONField(default=list, blank=True)
    minimum_months = models.PositiveIntegerField(
        null=True, blank=True, help_text="A longer minimum of your own, in months (optional)."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"retention policy of {self.workspace}"


class LegalHold(models.Model):
    """A hold that keeps ledger events from being pruned or erased while it is in force.

    It covers the events of its organisation that match every criterion it names: a workspace
    (none: the whole organisation, its own events included), a subject (a person, as actor or
    target), a target (e.g. a workflow, by type and id) and a time range (whole UTC days, both
    ends optional). A released hold no longer blocks anything but stays on record.
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+")
    workspace = models.ForeignKey(
        "tenancy.Workspace",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="Empty: every workspace of the organisation and its own events.",
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        help_text="Only the events this person did or that concern them.",
    )
    subject_label = models.CharField(max_length=254, blank=True, editable=False)
    target_type = models.CharField(
        max_length=100,
        blank=True,
        help_text="Only events about this kind of object, e.g. workflows.workflow.",
    )
    target_id = models.CharField(max_length=64, blank=True, help_text="…and this object's id.")
    starts_on = models.DateField(null=True, blank=True, help_text="Events from this day (UTC).")
    ends_on = models.DateField(null=True, blank=True, help_text="Events up to this day, included (UTC).")
    reason = models.TextField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who answers for the hold (legal counsel, the investigation's lead).",
    )
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", editable=False
    )
    placed_at = models.DateTimeField(default=timezone.now, editable=False)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        editable=False,
    )
    released_at = models.DateTimeField(null=True, blank=True, editable=False)
    release_reason = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["organization"],
                condition=models.Q(released_at__isnull=True),
                name="legal_hold_active",
            )
        ]

    def __str__(self) -> str:
        return f"legal hold {str(self.uid)[:8]} ({self.scope_label})"

    @property
    def active(self) -> bool:
        return self.released_at is None

    @property
    def scope_label(self) -> str:
        parts = [str(self.workspace) if self.workspace_id else "whole organisation"]
        if self.subject_id:
            parts.append(f"subject {self.subject_label}")
        if self.target_type:
            parts.append(f"{self.target_type} {self.target_id}".strip())
        if self.starts_on or self.ends_on:
            parts.append(f"{self.starts_on or '…'} to {self.ends_on or '…'}")
        return ", ".join(parts)


class LedgerArchiveState(models.TextChoices):
    PLANNED = "planned", "Planned"
    ARCHIVING = "archiving", "Writing the archive"
    PRUNING = "pruning", "Pruning"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class LedgerArchive(models.Model):
    """One run of archive-then-prune: the events it chose (sealed, under a signed tree head, past
    their retention, under no hold), the signed archive that keeps them verifiable offline, and
    the prune that then deletes their content from the database while keeping their leaves
    (``PrunedLeaf``). Runs one at a time; an interrupted run resumes where it stopped."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    state = models.CharField(
        max_length=16, choices=LedgerArchiveState.choices, default=LedgerArchiveState.PLANNED
    )
    requested_by = models.CharField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    head_number = models.BigIntegerField()
    tree_size = models.BigIntegerField()
    criteria = models.JSONField(default=dict)
    events_total = models.BigIntegerField(default=0)
    events_pruned = models.BigIntegerField(default=0)
    events_kept = models.BigIntegerField(default=0, help_text="Chosen but kept: a hold placed since.")
    first_sequence = models.BigIntegerField(null=True, blank=True)
    last_sequence = models.BigIntegerField(null=True, blank=True)
    file_name = models.CharField(max_length=100, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"ledger archive #{self.pk} ({self.get_state_display()})"


class PrunedLeaf(models.Model):
    """The leaf of a sealed event whose content was pruned: its sequence, leaf hash and chain
    hash, and the archive that holds its content. The Merkle tree, every later proof and the
    chain stay whole; ``audit_verify`` accepts the leaf in place of the event because an archive
    run whose ``retention.pruned`` event is in the ledger vouches for it. Insert-only."""

    sequence = models.BigIntegerField(primary_key=True)
    leaf_hash = models.BinaryField()
    chain_hash = models.BinaryField()
    archive = models.ForeignKey(LedgerArchive, on_delete=models.PROTECT, related_name="+", db_index=False)

    def __str__(self) -> str:
        return f"pruned leaf {self.sequence}"
