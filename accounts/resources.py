"""Users as a governed resource of the decision point."""

from governance.access import resources as access_resources
from governance.access.resources import Resource


def register() -> None:
    """Register the user model (called from the app's ``ready``)."""
    from accounts.models import User

    access_resources.register(
        Resource(
            User,
            organization_field="organization",
            workspace_field=None,
            actions={"view": "user.view", "add": "user.manage", "change": "user.manage"},
        )
    )
