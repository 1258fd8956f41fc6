"""Reads of the secrets store: the credentials an actor manages, and the integration of a credential."""

from __future__ import annotations

from django.db.models import QuerySet

from governance.access.queries import restrict
from governance.tenancy.models import Workspace
from workflows.credentials.models import STORE, Credential, CredentialStatus, CredentialVersion
from workflows.integrations.models import Integration


def credentials_visible_to(user) -> QuerySet[Credential]:
    """Credentials of the workspaces where ``user`` may manage credentials. The store is another
    database, so the decision is taken per workspace in the main one, then applied as a filter."""
    workspace_ids = list(
        restrict(Workspace.objects.all(), user, "credential.manage").values_list("pk", flat=True)
    )
    return Credential.objects.using(STORE).filter(workspace_id__in=workspace_ids)


def credential_integration(credential: Credential) -> Integration:
    """The integration a credential belongs to (held as an id: no foreign key leaves the store)."""
    return Integration.objects.select_related("workspace").get(pk=credential.integration_id)


def integration_credential_current(integration_id: int) -> dict | None:
    """The credential an execution step uses to call an integration — its first by name — and the
    number of its active version now: ``{"id": ..., "version": ...}``, or None without one. The
    step keeps this pin for all its deliveries, so a rotation's grace period keeps it working."""
    version = (
        CredentialVersion.objects.using(STORE)
        .filter(credential__integration_id=integration_id, status=CredentialStatus.ACTIVE)
        .order_by("credential__name")
        .values("credential_id", "number")
        .first()
    )
    return None if version is None else {"id": str(version["credential_id"]), "version": version["number"]}
