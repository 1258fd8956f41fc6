"""Executions of approved workflow versions and their step runs (one row per attempt).

PostgreSQL holds the truth about a run; Celery only delivers "look at step run N now". Both
``status`` fields change only through ``workflows.executions.transitions``, called from the
services on rows they locked.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from governance.crypto.fields import EncryptedTextField


class TriggerKind(models.TextChoices):
    MANUAL = "manual", "Manual"
    SCHEDULE = "schedule", "Schedule"
    WEBHOOK = "webhook", "Webhook"


class ExecutionStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    HALTED = "halted", "Halted"


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    RETRY_DUE = "retry_due", "Retry due"
    WAITING = "waiting", "Waiting"
    POISONED = "poisoned", "Poisoned"
    HALTED = "halted", "Halted"
    CANCELLED = "cancelled", "Cancelled"


class Execution(models.Model):
    """One run of a workflow, pinned to the exact active version it started on.

    ``input_digest`` is the SHA-256 of the redacted input's RFC 8785 bytes; the input itself is
    kept (redacted and encrypted) as the first step run's inputs. ``idempotency_key`` makes a
    repeated trigger return the run it already started (unique per workflow when given).
    """

    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.PROTECT, related_name="+")
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.PROTECT, related_name="executions")
    version = models.ForeignKey("workflows.WorkflowVersion", on_delete=models.PROTECT, related_name="+")
    trigger_kind = models.CharField(max_length=16, choices=TriggerKind.choices, default=TriggerKind.MANUAL)
    trigger_source = models.CharField(max_length=200, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.QUEUED, editable=False
    )
    idempotency_key = models.CharField(max_length=200, blank=True)
    input_digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="workflows_execution_idempotency",
            )
        ]
        indexes = [
            models.Index(fields=["workflow", "-created_at"], name="workflows_execution_runs"),
            # The runs a halt must stop: few at any time, found without reading finished ones.
            models.Index(
                fields=["workspace"],
                condition=models.Q(status__in=["queued", "running", "waiting"]),
                name="workflows_execution_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow} run {self.pk}"


class StepRun(models.Model):
    """One attempt at one step of an execution.

        ``inputs`` (the context the step saw) and ``outputs`` are redacted, then encrypted under the
        workspace's general data key and bound to this row (hence the UUID key). ``claim_token`` is
        set by each claim: only the holder of the current claim may finish the attempt, so a
        duplicate delivery cannot record a second result. ``pins`` holds what the first claim chose
    for every later delivery (the credential version an ``http_request`` calls with). ``dispatched_at`` says a message was
        handed to the broker; the sweep re-sends pending rows without one, and rows whose
        ``lease_until`` has passed.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    execution = models.ForeignKey(Execution, on_delete=models.PROTECT, related_name="step_runs")
    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.PROTECT, related_name="+")
    step_id = models.CharField(max_length=40)
    step_type = models.CharField(max_length=20)
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING, editable=False
    )
    inputs = EncryptedTextField(null=True)
    outputs = EncryptedTextField(null=True)
    inputs_digest = models.CharField(max_length=64, blank=True)
    outputs_digest = models.CharField(max_length=64, blank=True)
    error_class = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    deliveries = models.PositiveIntegerField(default=0)
    claim_token = models.CharField(max_length=32, blank=True)
    pins = models.JSONField(default=dict, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["execution", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "step_id", "attempt"], name="workflows_steprun_attempt"
            )
        ]
        indexes = [
            models.Index(
                fields=["status", "dispatched_at"],
                condition=models.Q(status__in=["pending", "running"]),
                name="workflows_steprun_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.step_id} #{self.attempt} of {self.execution_id}"


class HaltScope(models.TextChoices):
    WORKSPACE = "workspace", "Workspace"
    ORGANIZATION = "organization", "Whole organisation"


class Halt(models.Model):
    """An incident stop of every execution of a workspace, or of the whole organisation.

    While a halt is active (``released_at`` is empty) no step of a run in its scope starts, new
    triggers are refused, and the runs in its scope end ``halted``. Only a second person may
    release it: the database refuses a release by the person who raised it. A workflow's own stop
    is its ``quarantined`` status, released by the same two-person rule.
    """

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+")
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    scope = models.CharField(max_length=16, choices=HaltScope.choices)
    reason = models.TextField()
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    raised_at = models.DateTimeField(default=timezone.now)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(scope="workspace", workspace__isnull=False))
                | (models.Q(scope="organization", workspace__isnull=True)),
                name="workflows_halt_scope",
            ),
            # Two people: whoever raised a halt cannot be the one who releases it.
            models.CheckConstraint(
                condition=models.Q(released_by__isnull=True) | ~models.Q(released_by=models.F("raised_by")),
                name="workflows_halt_two_people",
            ),
            models.CheckConstraint(
                condition=models.Q(released_by__isnull=True, released_at__isnull=True)
                | models.Q(released_by__isnull=False, released_at__isnull=False),
                name="workflows_halt_release_complete",
            ),
            # At most one active halt per scope (NULLs equal: one per organisation as well).
            models.UniqueConstraint(
                fields=["organization", "workspace"],
                condition=models.Q(released_at__isnull=True),
                nulls_distinct=False,
                name="workflows_halt_one_active",
            ),
        ]

    def __str__(self) -> str:
        where = self.workspace if self.workspace_id else "the whole organisation"
        return f"Halt of {where}"

    @property
    def active(self) -> bool:
        return self.released_at is None


class WebhookSecretStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PREVIOUS = "previous", "Previous: still accepted until its grace ends"
    REVOKED = "revoked", "Revoked"


class WebhookSecret(models.Model):
    """The key a workflow's webhook callers sign with (HMAC-SHA256), kept in the secrets store.

    Like credentials, it lives in the ``secrets`` database (no foreign key leaves it: workflow and
    people are ids) and its value is encrypted under the workspace's *credentials* data key. A
    new secret makes the active one *previous*, accepted until ``valid_until`` so callers can
    switch without a gap; only the fingerprint is ever shown again.
    """

    # Lives in the secrets store: see governance.core.dbrouters.STORE_MODELS.

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace_id = models.BigIntegerField()
    workflow_id = models.BigIntegerField(db_index=True)
    number = models.PositiveIntegerField()
    value = EncryptedTextField(purpose="credentials", null=True)
    fingerprint = models.CharField(max_length=32)
    status = models.CharField(
        max_length=16, choices=WebhookSecretStatus.choices, default=WebhookSecretStatus.ACTIVE
    )
    valid_until = models.DateTimeField(null=True, blank=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workflow_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow_id", "number"], name="webhook_secret_number"),
            models.UniqueConstraint(
                fields=["workflow_id"], condition=models.Q(status="active"), name="webhook_secret_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"webhook secret v{self.number} ({self.fingerprint})"


class HumanTaskStatus(models.TextChoices):
    OPEN = "open", "Waiting for a decision"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    TIMED_OUT = "timed_out", "Timed out"
    CANCELLED = "cancelled", "Cancelled with its run"
    HALTED = "halted", "Frozen by a halt"


class HumanTaskKind(models.TextChoices):
    APPROVAL = "approval", "Approval"
    AI_REVIEW = "ai_review", "Review of an AI decision"


class HumanTask(models.Model):
    """A decision a ``human_approval`` step waits for: a person holding ``approver_role`` in the
    workspace approves or rejects it, with a comment, before ``due_at`` — never the person who
    triggered the run. At ``due_at`` the ``on_timeout`` outcome applies (reject by default).

    An ``ai_review`` task holds an AI step's decision for a person (a step marked for review, of
    high impact, or whose input's injection risk crossed the workspace's threshold): ``review`` is
    what the reviewer sees (the redacted input, the model's output, the risk reasons, the validators'
    results and the next step the output chose), ``override`` the output the reviewer put in its
    place, validated again; both JSON, encrypted like step outputs. The original is kept beside it.
    """

    execution = models.ForeignKey(Execution, on_delete=models.PROTECT, related_name="human_tasks")
    step_run = models.OneToOneField(StepRun, on_delete=models.PROTECT, related_name="human_task")
    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.PROTECT, related_name="+")
    step_id = models.CharField(max_length=40)
    approver_role = models.CharField(max_length=40)
    status = models.CharField(
        max_length=16, choices=HumanTaskStatus.choices, default=HumanTaskStatus.OPEN, editable=False
    )
    due_at = models.DateTimeField()
    on_timeout = models.CharField(max_length=8, default="reject")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=HumanTaskKind.choices, default=HumanTaskKind.APPROVAL)
    review = EncryptedTextField(null=True, blank=True)
    override = EncryptedTextField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(
                fields=["workspace", "approver_role", "due_at"],
                condition=models.Q(status="open"),
                name="workflows_humantask_open",
            )
        ]

    def __str__(self) -> str:
        return f"Approval of {self.step_id} in run {self.execution_id}"


class AIControls(models.Model):
    """A workspace's limits on its AI steps (defaults from settings until an owner or officer sets
    them): the injection risk score from which a step's decision goes to a person, the calls one
    run may make, and the tokens the workspace may spend in a (UTC) day."""

    workspace = models.OneToOneField(
        "tenancy.Workspace", on_delete=models.PROTECT, related_name="ai_controls"
    )
    risk_threshold = models.FloatField()
    max_calls_per_execution = models.PositiveIntegerField()
    daily_token_budget = models.PositiveIntegerField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "AI controls"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(risk_threshold__gte=0, risk_threshold__lte=1),
                name="ai_controls_threshold_range",
            )
        ]

    def __str__(self) -> str:
        return f"AI controls of {self.workspace}"


class AICallVerdict(models.TextChoices):
    PASSED = "passed", "Validated, ran on"
    REVIEW = "review", "Sent to a person"
    REJECTED = "rejected", "Output refused by validation"
    CANARY = "canary", "Canary leaked: incident review"
    REFUSED = "refused", "Refused before the call"
    FAILED = "failed", "The call failed"


class AICall(models.Model):
    """One call of an AI step to a model: what the budgets count and the run's timeline shows.
    Its full decision record (hashes, guardrail results, scores) is the ``ai.decision`` ledger
    event of the same transaction; nothing here holds the input or the output."""

    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.PROTECT, related_name="+")
    execution = models.ForeignKey(Execution, on_delete=models.PROTECT, related_name="ai_calls")
    step_run = models.OneToOneField(StepRun, on_delete=models.PROTECT, related_name="ai_call")
    provider = models.CharField(max_length=100)
    model = models.CharField(max_length=100)
    model_version = models.CharField(max_length=100, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    risk_score = models.FloatField(null=True, blank=True)
    verdict = models.CharField(max_length=16, choices=AICallVerdict.choices)
    guardrails = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["workspace", "created_at"], name="workflows_aicall_budget")]

    def __str__(self) -> str:
        return f"{self.model} call in run {self.execution_id}"
