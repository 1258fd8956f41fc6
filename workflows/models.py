"""The app's models live in its sub-packages; importing them here is how Django finds them.

The app label stays ``workflows`` (and so do the tables); import a model from the sub-package
that owns it, e.g. ``workflows.changes.models.Workflow``.
"""

import workflows.ai.models
import workflows.changes.models
import workflows.credentials.models
import workflows.executions.models
import workflows.integrations.models
import workflows.service_accounts.models  # noqa: F401
