"""The AI register as governed resources: organisation-level, read by every role of the
organisation, kept by its compliance officers; bias tests belong to their workflow's workspace."""

from governance.core import resources as access_resources
from governance.core.resources import Resource
from workflows.ai.models import AIModel, AIProvider, BiasTest, RegisterChange

_REGISTER = {"view": "ai_register.view", "add": "ai_register.manage"}


def register() -> None:
    """Register the register's models (called from the app's ``ready``)."""
    access_resources.register(
        Resource(AIProvider, organization_field="organization", workspace_field=None, actions=_REGISTER)
    )
    access_resources.register(
        Resource(
            AIModel, organization_field="provider__organization", workspace_field=None, actions=_REGISTER
        )
    )
    access_resources.register(
        Resource(RegisterChange, organization_field="organization", workspace_field=None, actions=_REGISTER)
    )
    access_resources.register(
        Resource(
            BiasTest,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions=_REGISTER,
        )
    )
