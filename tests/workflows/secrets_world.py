"""Keys, credentials and runbooks in the test world (own, sibling and foreign workspace), for the matrices."""

from __future__ import annotations

import base64
import os

from governance.crypto import keyring
from governance.crypto.models import DataKey, RotationJob
from governance.crypto.services import workspace_key_configure
from governance.tenancy.models import Membership
from workflows.credentials.models import Credential, CredentialRunbook, CredentialVersion
from workflows.integrations.models import Integration


def secrets_objects_of(world) -> dict[str, dict[str, object]]:
    """Per scope: the workspace's own KEK row, its credentials data key, a rotation job, a credential
    and an incident runbook (made once per world)."""
    made = getattr(world, "secrets_objects", None)
    if made is not None:
        return made
    made = {label: {} for label in ("crypto.keyencryptionkey", "crypto.datakey", "crypto.rotationjob",
                                    "workflows.credential", "workflows.credentialrunbook")}  # fmt: skip
    scopes = (("own", world.ws, world.users["workspace_owner"]), ("sibling", world.sibling, world.sibling_membership.user),
              ("foreign", world.foreign, world.foreign_user))  # fmt: skip
    for scope, workspace, person in scopes:
        # The workspace brings its own key (imported material, as a customer would).
        owner = Membership.objects.get(workspace=workspace, role_id="workspace_owner").user
        made["crypto.keyencryptionkey"][scope] = workspace_key_configure(
            actor=owner,
            workspace=workspace,
            provider="local",
            material_b64=base64.b64encode(os.urandom(32)).decode(),
        )
        keyring.forget_keys()
        integration = Integration.objects.create(
            workspace=workspace, name=f"{scope} vault", slug="vaulted", kind="crm"
        )
        credential = Credential.objects.using("secrets").create(
            workspace_id=workspace.pk, integration_id=integration.pk, name="api_key"
        )
        version = CredentialVersion(credential=credential, workspace_id=workspace.pk, number=1, status="active",
                                    fingerprint="fp:matrix")  # fmt: skip
        made["workflows.credential"][scope] = credential
        made["crypto.datakey"][scope] = data_key = DataKey.objects.create(
            workspace=workspace, purpose="general", version=1, kek=made["crypto.keyencryptionkey"][scope],
            wrapped=b"\x00" * 60,  # a row to look at: never unwrapped by these tests
        )  # fmt: skip
        version.__dict__["value"] = None
        version.save(using="secrets")
        made["crypto.rotationjob"][scope] = RotationJob.objects.create(from_key=data_key, to_key=data_key)
        made["workflows.credentialrunbook"][scope] = CredentialRunbook.objects.create(
            workspace=workspace, reason="matrix", started_by=person
        )
    world.secrets_objects = made
    return made
