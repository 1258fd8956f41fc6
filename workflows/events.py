"""The event codes this app writes to the ledger (registered in its ``AppConfig.ready``)."""

from audit.events import Category, EventCode


class WorkflowEvent(EventCode):
    """Workflows: changes and approvals, executions, integrations and the network boundary, credentials, service accounts."""

    INTEGRATION_CREATED = "integration.created", Category.ADMIN
    INTEGRATION_REQUESTED = "integration.requested", Category.ADMIN
    INTEGRATION_REQUEST_APPROVED = "integration.request.approved", Category.ADMIN
    INTEGRATION_REQUEST_REJECTED = "integration.request.rejected", Category.ADMIN
    WORKFLOW_CREATED = "workflow.created", Category.WORKFLOW_LIFECYCLE
    WORKFLOW_VERSION_CREATED = "workflow.version.created", Category.WORKFLOW_LIFECYCLE
    WORKFLOW_CHANGE_SUBMITTED = "workflow.change.submitted", Category.WORKFLOW_LIFECYCLE
    WORKFLOW_CHANGE_WITHDRAWN = "workflow.change.withdrawn", Category.WORKFLOW_LIFECYCLE
    WORKFLOW_CHANGE_SUPERSEDED = "workflow.change.superseded", Category.WORKFLOW_LIFECYCLE
    WORKFLOW_CHANGE_APPROVED = "workflow.change.approved", Category.WORKFLOW_LIFECYCLE
    WORKFLOW_CHANGE_REJECTED = "workflow.change.rejected", Category.WORKFLOW_LIFECYCLE
    WORKFLOW_CHANGE_APPLIED = "workflow.change.applied", Category.WORKFLOW_LIFECYCLE
    WORKFLOW_CHANGE_APPLY_DEFERRED = "workflow.change.apply_deferred", Category.WORKFLOW_LIFECYCLE
    WORKFLOW_ACTIVATED = "workflow.activated", Category.WORKFLOW_LIFECYCLE
    WORKFLOW_DEACTIVATED = "workflow.deactivated", Category.WORKFLOW_LIFECYCLE
    # Credentials (values never in the ledger: fingerprints only).
    CREDENTIAL_CREATED = "credential.created", Category.ADMIN
    CREDENTIAL_VERSION_STAGED = "credential.version_staged", Category.ADMIN
    CREDENTIAL_VERSION_TESTED = "credential.version_tested", Category.ADMIN
    CREDENTIAL_VERSION_PROMOTED = "credential.version_promoted", Category.ADMIN
    CREDENTIAL_VERSION_REVOKED = "credential.version_revoked", Category.ADMIN
    CREDENTIAL_ROTATION_REQUIRED = "credential.rotation_required", Category.ADMIN
    CREDENTIAL_RUNBOOK_STARTED = "credential.runbook_started", Category.ADMIN
    CREDENTIAL_RUNBOOK_COMPLETED = "credential.runbook_completed", Category.ADMIN
    # Connectors, integrations and the network boundary.
    CONNECTOR_CREATED = "connector.created", Category.ADMIN
    CONNECTOR_VETTED = "connector.vetted", Category.ADMIN
    INTEGRATION_UPDATED = "integration.updated", Category.ADMIN
    INTEGRATION_OUTBOUND_REFUSED = "integration.outbound_refused", Category.ACCESS
    NETWORK_ALLOW_RULE_CREATED = "network.allow_rule_created", Category.ADMIN
    NETWORK_ALLOW_RULE_REMOVED = "network.allow_rule_removed", Category.ADMIN
    # Service accounts.
    SERVICE_ACCOUNT_CREATED = "service_account.created", Category.ADMIN
    SERVICE_ACCOUNT_TOKEN_ISSUED = "service_account.token_issued", Category.AUTHENTICATION
    SERVICE_ACCOUNT_TOKEN_REVOKED = "service_account.token_revoked", Category.AUTHENTICATION
    SERVICE_ACCOUNT_AUTHENTICATED = "service_account.authenticated", Category.AUTHENTICATION
    SERVICE_ACCOUNT_AUTHENTICATION_FAILED = "service_account.authentication_failed", Category.AUTHENTICATION
    SERVICE_ACCOUNT_LOCKED_OUT = "service_account.locked_out", Category.AUTHENTICATION
    SERVICE_ACCOUNT_USED = "service_account.used", Category.ACCESS
    SERVICE_ACCOUNT_ROTATION_WARNING = "service_account.rotation_warning", Category.SYSTEM
    SERVICE_ACCOUNT_DISABLED = "service_account.disabled", Category.ADMIN
    SERVICE_ACCOUNT_REACTIVATED = "service_account.reactivated", Category.ADMIN
    # Executions: each in the transaction of the state it describes; I/O as redacted digests only.
    EXECUTION_TRIGGERED = "execution.triggered", Category.EXECUTION
    EXECUTION_STARTED = "execution.started", Category.EXECUTION
    EXECUTION_HALTED = "execution.halted", Category.EXECUTION
    EXECUTION_FINISHED = "execution.finished", Category.EXECUTION
    STEP_QUEUED = "step.queued", Category.EXECUTION
    STEP_STARTED = "step.started", Category.EXECUTION
    STEP_SUCCEEDED = "step.succeeded", Category.EXECUTION
    STEP_FAILED = "step.failed", Category.EXECUTION
    STEP_RETRY_SCHEDULED = "step.retry_scheduled", Category.EXECUTION
    STEP_POISONED = "step.poisoned", Category.EXECUTION
    STEP_CLAIM_FAILED = "step.claim_failed", Category.EXECUTION
    STEP_HALTED = "step.halted", Category.EXECUTION
    STEP_CANCELLED = "step.cancelled", Category.EXECUTION
    BRANCH_DECIDED = "branch.decided", Category.EXECUTION
    DATA_ACCESSED = "data.accessed", Category.EXECUTION
    DATA_WRITTEN = "data.written", Category.EXECUTION
    OPERATOR_CANCELLED = "operator.cancelled", Category.EXECUTION
    OPERATOR_RETRIED = "operator.retried", Category.EXECUTION
    OPERATOR_RESUMED = "operator.resumed", Category.EXECUTION
    EXECUTION_REFUSED = "execution.refused", Category.EXECUTION
    EXECUTION_WAITING = "execution.waiting", Category.EXECUTION
    EXECUTION_CONTINUED = "execution.continued", Category.EXECUTION
    STEP_WAITING = "step.waiting", Category.EXECUTION
    HUMAN_TASK_REQUESTED = "human_task.requested", Category.EXECUTION
    HUMAN_TASK_DECIDED = "human_task.decided", Category.EXECUTION
    HUMAN_TASK_CLOSED = "human_task.closed", Category.EXECUTION
    # AI steps: every call is a decision record; a leaked canary is marked for incident review; a
    # spent budget or call cap stops the run with its reason.
    AI_DECISION = "ai.decision", Category.EXECUTION
    AI_CANARY_LEAKED = "ai.canary_leaked", Category.EXECUTION
    AI_LIMIT_REACHED = "ai.limit_reached", Category.EXECUTION
    AI_CONTROLS_CHANGED = "ai.controls_changed", Category.EXECUTION
    AI_BIAS_TEST_RECORDED = "ai.bias_test_recorded", Category.ADMIN
    # The AI register: one compliance officer proposes, another approves (then it is applied) or rejects.
    AI_REGISTER_CHANGE_PROPOSED = "ai_register.change_proposed", Category.ADMIN
    AI_REGISTER_CHANGE_APPROVED = "ai_register.change_approved", Category.ADMIN
    AI_REGISTER_CHANGE_REJECTED = "ai_register.change_rejected", Category.ADMIN
    AI_REGISTER_CHANGE_APPLIED = "ai_register.change_applied", Category.ADMIN
    # Halts: the incident stop of a workspace or an organisation, released by a second person.
    HALT_RAISED = "halt.raised", Category.EXECUTION
    HALT_RELEASED = "halt.released", Category.EXECUTION
    # Signed webhooks: their secrets, and the requests refused (forged, replayed, too old).
    WEBHOOK_SECRET_ISSUED = "webhook.secret_issued", Category.ADMIN
    WEBHOOK_SECRETS_REVOKED = "webhook.secrets_revoked", Category.ADMIN
    WEBHOOK_REFUSED = "webhook.refused", Category.EXECUTION
