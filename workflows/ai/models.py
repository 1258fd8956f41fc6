"""The organisation's register of AI providers and models, its governed changes, and the bias
tests of the models that decide about people.

A provider is where a model runs and who holds the data it is sent (an endpoint that is a
workspace integration, the regions where data is processed, retention, training on customer data,
the data-processing agreement); a model is one model of a provider, pinned by its id and version.
Nothing here is edited directly: a compliance officer proposes a ``RegisterChange`` and another
officer approves it (``workflows.ai.services``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

DEFAULT_REVIEW_DAYS = 365


class ProviderKind(models.TextChoices):
    SAAS = "saas", "SaaS (the vendor runs the model)"
    SELF_HOSTED = "self_hosted", "Self-hosted (our cloud account runs it)"
    ON_PREMISE = "on_premise", "On-premise (our own hardware)"


class ModelStatus(models.TextChoices):
    APPROVED = "approved", "Approved"
    PENDING = "pending", "Pending (not usable yet)"
    BLOCKED = "blocked", "Blocked"


class AIProvider(models.Model):
    """A provider of AI models, for every workspace of its organisation.

    ``integration_slug`` names the workspace integration that is its endpoint (each workspace that
    uses the provider has an integration with that slug); ``regions`` are the data-region codes
    (as a workspace's ``data_region``) where it processes data — a workspace outside them may not
    send it anything. ``last_reviewed_on`` + ``review_every_days`` is when it is due for review
    again; an overdue provider is refused like a blocked one."""

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+")
    slug = models.SlugField(max_length=60)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=ProviderKind.choices)
    integration_slug = models.SlugField(max_length=60)
    regions = models.JSONField(default=list)
    retention_days = models.PositiveIntegerField()
    trains_on_customer_data = models.BooleanField()
    contract_reference = models.CharField(max_length=200, blank=True)
    dpa_on_file = models.BooleanField()
    last_reviewed_on = models.DateField(null=True, blank=True)
    review_every_days = models.PositiveIntegerField(default=DEFAULT_REVIEW_DAYS)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        verbose_name = "AI provider"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "slug"], name="ai_provider_slug_per_organization"
            ),
            models.CheckConstraint(
                condition=models.Q(review_every_days__gt=0), name="ai_provider_review_days"
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class AIModel(models.Model):
    """One model of a provider: ``slug`` is what an ``ai_prompt`` step names, ``model_id`` what
    the API is sent, ``model_version`` what the decision records carry. A self-hosted or
    on-premise model is pinned by the SHA-256 of its artefact. ``model_card`` is a CycloneDX
    ``modelCard`` object (fairness assessments under ``considerations.fairnessAssessments``).
    Only an ``approved`` model, reviewed on time, may be approved into a workflow or called."""

    provider = models.ForeignKey(AIProvider, on_delete=models.PROTECT, related_name="models")
    slug = models.SlugField(max_length=60)
    model_id = models.CharField(max_length=200)
    model_version = models.CharField(max_length=100)
    licence = models.CharField(max_length=200)
    artefact_sha256 = models.CharField(max_length=64, blank=True)
    model_card = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.PENDING)
    last_reviewed_on = models.DateField(null=True, blank=True)
    review_every_days = models.PositiveIntegerField(default=DEFAULT_REVIEW_DAYS)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["provider__slug", "slug"]
        verbose_name = "AI model"
        constraints = [
            models.UniqueConstraint(fields=["provider", "slug"], name="ai_model_slug_per_provider"),
            models.CheckConstraint(condition=models.Q(review_every_days__gt=0), name="ai_model_review_days"),
        ]

    def __str__(self) -> str:
        return f"{self.provider.slug}/{self.slug}"


class RegisterEntry(models.TextChoices):
    PROVIDER = "provider", "Provider"
    MODEL = "model", "Model"


class RegisterOperation(models.TextChoices):
    CREATE = "create", "Register"
    UPDATE = "update", "Update"
    BLOCK = "block", "Block"


class RegisterChangeStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved and applied"
    REJECTED = "rejected", "Rejected"


class RegisterChange(models.Model):
    """A proposed change of the register: a new provider or model, a new state of one (``values``
    holds every field of the proposed state, as JSON), or blocking one. Proposed by one compliance
    officer, approved (and then applied) or rejected by another — never by the proposer."""

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+")
    entry = models.CharField(max_length=16, choices=RegisterEntry.choices)
    operation = models.CharField(max_length=16, choices=RegisterOperation.choices)
    # The provider changed, or (for a model) the provider it belongs to.
    provider = models.ForeignKey(
        AIProvider, on_delete=models.PROTECT, related_name="changes", null=True, blank=True
    )
    model = models.ForeignKey(
        AIModel, on_delete=models.PROTECT, related_name="changes", null=True, blank=True
    )
    values = models.JSONField(default=dict, blank=True)
    reason = models.TextField()
    status = models.CharField(
        max_length=16, choices=RegisterChangeStatus.choices, default=RegisterChangeStatus.PENDING
    )
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-proposed_at", "-id"]
        verbose_name = "AI register change"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(decided_by=models.F("proposed_by")), name="ai_register_second_officer"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_operation_display()} {self.entry} {self.subject}"

    @property
    def subject(self) -> str:
        """What the change is about, e.g. ``llm-eu/small-eu``."""
        if self.entry == RegisterEntry.MODEL:
            provider = self.provider.slug if self.provider_id else "?"
            return f"{provider}/{self.model.slug if self.model_id else self.values.get('slug', '?')}"
        return self.provider.slug if self.provider_id else str(self.values.get("slug", "?"))


class BiasMetric(models.TextChoices):
    SELECTION_RATE_RATIO = "selection_rate_ratio", "Selection-rate ratio (lowest group ÷ highest)"
    TRUE_POSITIVE_RATE_RATIO = "true_positive_rate_ratio", "True-positive-rate ratio (lowest group ÷ highest)"


class BiasTest(models.Model):
    """A bias test of one model in one workflow that makes decisions about people (an ``ai_prompt``
    step with ``decides_about_people``): the dataset it ran on, the protected attributes compared,
    the metric (a ratio between the worst- and best-treated groups, 1 is parity), the threshold it
    had to reach (0.8 is the four-fifths rule), the result, who reviewed it and when. A version of
    such a workflow is approved and applied only while a passing test of each of its models is
    current (``valid_until``). Records are never edited: a new test is a new row."""

    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.PROTECT, related_name="+")
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.PROTECT, related_name="bias_tests")
    provider = models.CharField(max_length=100)
    model = models.CharField(max_length=100)
    model_version = models.CharField(max_length=100, blank=True)
    dataset_reference = models.CharField(max_length=500)
    protected_attributes = models.JSONField(default=list)
    metric = models.CharField(max_length=32, choices=BiasMetric.choices)
    value = models.FloatField()
    threshold = models.FloatField()
    passed = models.BooleanField()
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    tested_on = models.DateField()
    valid_until = models.DateField()
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-tested_on", "-id"]
        indexes = [
            models.Index(
                fields=["workflow", "provider", "model", "-tested_on"], name="workflows_biastest_current"
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(value__gte=0, value__lte=1), name="bias_test_value_ratio"
            ),
            models.CheckConstraint(
                condition=models.Q(threshold__gt=0, threshold__lte=1), name="bias_test_threshold"
            ),
            models.CheckConstraint(
                condition=models.Q(valid_until__gte=models.F("tested_on")), name="bias_test_validity"
            ),
        ]

    def __str__(self) -> str:
        outcome = "passed" if self.passed else "failed"
        return (
            f"Bias test of {self.provider}/{self.model} in {self.workflow_id}: {outcome} ({self.tested_on})"
        )
