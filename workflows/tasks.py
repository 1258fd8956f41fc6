"""The app's tasks live in its sub-packages; Celery's autodiscovery imports this module, which
imports theirs so that a worker knows every task by its name."""

import workflows.changes.tasks
import workflows.credentials.tasks
import workflows.executions.tasks
import workflows.integrations.tasks
import workflows.service_accounts.tasks  # noqa: F401
