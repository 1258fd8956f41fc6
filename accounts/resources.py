"""Users as a governed resource of the decision point."""

from governance.access import resources as access_resources
from governance.access.resources import Resource


def register() -> None:
    """Register the user model (called from the app's ``ready``)."""
    from accounts.models import GroupRoleMapping, IdentityProvider, SignInPolicy, User

    access_resources.register(
        Resource(
            User,
            organization_field="organization",
            workspace_field=None,
            actions={"view": "user.view", "add": "user.manage", "change": "user.manage"},
        )
    )
    # Single sign-on configuration is organisation-level: platform administrators only.
    manage = "organization.manage"
    for model, verbs in (
        (IdentityProvider, ("view", "add", "change")),
        (GroupRoleMapping, ("view", "add", "delete")),
        (SignInPolicy, ("view", "add", "change")),
    ):
        access_resources.register(
            Resource(model, organization_field="organization" if model is not GroupRoleMapping
                     else "provider__organization", workspace_field=None,
                     actions=dict.fromkeys(verbs, manage))
        )  # fmt: skip
