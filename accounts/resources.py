"""Users, SCIM tokens and groups, and conditional-access policies as governed resources of the decision point."""

from accounts.models import (
    ConditionalAccessPolicy,
    GroupRoleMapping,
    IdentityProvider,
    ScimGroup,
    ScimToken,
    SignInPolicy,
    User,
)
from governance.core import resources as access_resources
from governance.core.resources import Resource


def register() -> None:
    """Register the account models (called from the app's ``ready``)."""
    access_resources.register(
        Resource(
            User,
            organization_field="organization",
            workspace_field=None,
            actions={"view": "user.view", "add": "user.manage", "change": "user.manage"},
        )
    )
    # SCIM tokens and conditional-access policies are organisation-level configuration:
    # platform administrators only.
    for model in (ScimToken, ConditionalAccessPolicy):
        access_resources.register(
            Resource(
                model,
                organization_field="organization",
                workspace_field=None,
                actions={
                    "view": "organization.manage",
                    "add": "organization.manage",
                    "change": "organization.manage",
                },
            )
        )
    # Groups are written by the identity provider only (SCIM); people read them.
    access_resources.register(
        Resource(
            ScimGroup, organization_field="organization", workspace_field=None, actions={"view": "user.view"}
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
            Resource(
                model,
                organization_field="organization"
                if model is not GroupRoleMapping
                else "provider__organization",
                workspace_field=None,
                actions=dict.fromkeys(verbs, manage),
            )
        )
