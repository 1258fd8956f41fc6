"""Users as a governed resource of the decision point."""

from governance.access import resources as access_resources
from governance.access.resources import Resource


def register() -> None:
    """Register the user model and the conditional-access policy (called from the app's ``ready``)."""
    from accounts.models import ConditionalAccessPolicy, User

    access_resources.register(
        Resource(
            User,
            organization_field="organization",
            workspace_field=None,
            actions={"view": "user.view", "add": "user.manage", "change": "user.manage"},
        )
    )
    access_resources.register(
        Resource(
            ConditionalAccessPolicy,
            organization_field="organization",
            workspace_field=None,
            actions={
                "view": "organization.manage",
                "add": "organization.manage",
                "change": "organization.manage",
            },
        )
    )
