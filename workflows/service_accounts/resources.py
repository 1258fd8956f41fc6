"""Service accounts and their tokens as governed resources."""

from governance.core import resources as access_resources
from governance.core.resources import Resource
from workflows.service_accounts.models import ServiceAccount, ServiceAccountToken


def register() -> None:
    """Service accounts and their tokens: managed by workspace owners, in their workspace only.

    Tokens are listed through their account; nobody edits a service account's row by hand
    (its changes are the services' actions), so the admin offers view and add only.
    """
    access_resources.register(
        Resource(
            ServiceAccount,
            organization_field="workspace__organization",
            workspace_field="workspace",
            actions={"view": "service_account.manage", "add": "service_account.manage"},
        )
    )
    access_resources.register(
        Resource(
            ServiceAccountToken,
            organization_field="service_account__workspace__organization",
            workspace_field="service_account__workspace",
            actions={"view": "service_account.manage"},
        )
    )
