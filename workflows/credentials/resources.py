"""Incident runbooks as governed resources (credentials live in the secrets store: their access is
decided per workspace, see ``credentials_visible_to``)."""

from governance.core import resources as access_resources
from governance.core.resources import Resource
from workflows.credentials.models import CredentialRunbook


def register() -> None:
    """Incident runbooks: started and followed by owners and compliance officers of the workspace."""
    access_resources.register(
        Resource(
            CredentialRunbook,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "credential.rotate_all", "add": "credential.rotate_all"},
        )
    )
