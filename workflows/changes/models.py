"""Workflows, their immutable versions, change requests with their approvals, and per-workflow grants."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from guardian.models import UserObjectPermissionBase

from governance.core.choices import ReviewDecision
from governance.core.regions import DataRegion


class Environment(models.TextChoices):
    DEVELOPMENT = "development", "Development"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


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
    # Who quarantined it: only a second person may lift the quarantine (empty for quarantines
    # older than this rule, which anyone allowed may lift).
    quarantined_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
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

    ``state`` changes only through ``workflows.changes.transitions`` (called from services, under a row
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
    # Why an approved change is not applied yet, and when it will be (None: not known, e.g. a
    # policy that no time of day satisfies). Set when its apply is deferred or refused, cleared
    # when it is applied.
    deferral_reason = models.TextField(blank=True, editable=False)
    deferred_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "submitted_at"], name="workflows_change_inbox")]

    def __str__(self) -> str:
        return f"{self.workflow}: {self.summary}"


class Approval(models.Model):
    """One reviewer's decision on one tier of a change, with the checklist answers."""

    change = models.ForeignKey(ChangeRequest, on_delete=models.PROTECT, related_name="approvals")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    tier = models.CharField(max_length=32)
    decision = models.CharField(max_length=8, choices=ReviewDecision.choices)
    comment = models.TextField()
    checklist = models.JSONField(default=dict, blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["decided_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["change", "tier"],
                condition=models.Q(decision=ReviewDecision.APPROVE),
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
