"""The app's control-panel pages live in its sub-packages; Django's admin autodiscovery imports
this module, which imports theirs so that each registers its models."""

import workflows.ai.admin
import workflows.changes.admin
import workflows.credentials.admin
import workflows.executions.admin
import workflows.executions.admin_halts
import workflows.integrations.admin
import workflows.service_accounts.admin  # noqa: F401
