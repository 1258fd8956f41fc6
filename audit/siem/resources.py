"""Sinks and their dead letters as governed resources: organisation administrators
(``organization.manage``) see and change them; nobody deletes one (a sink is disabled)."""

from audit.siem.models import DeadLetter, Sink
from governance.core import resources as access_resources
from governance.core.resources import Resource

ACTION = "organization.manage"


def register() -> None:
    """Register the SIEM models (called from the app's ``ready``)."""
    access_resources.register(
        Resource(
            Sink,
            organization_field="organization",
            workspace_field=None,
            actions={"view": ACTION, "add": ACTION, "change": ACTION},
        )
    )
    access_resources.register(
        Resource(
            DeadLetter,
            organization_field="organization",
            workspace_field=None,
            actions={"view": ACTION, "change": ACTION},
        )
    )
