"""Services and selectors of the secrets store: credentials of integrations.

Values are write-only: they come in through these services, are encrypted under the workspace's
*credentials* data key, and leave only through :func:`credential_value_resolve` (for the
executions that call the integration). People see fingerprints, the rotation dates and who
rotated. Rotation never interrupts executions: a new version is staged, optionally tested against
the integration, promoted; the previous one stays valid for ``CREDENTIAL_ROTATION_GRACE`` so
that running executions finish with it, then the sweep revokes it and erases its value.

Two databases are involved: the secrets store and the main one (the ledger). The ledger's
transaction is the inner one and commits first: if the event cannot be written, nothing is
written to the store either (fail closed). The one window left — the store failing to commit
right after the ledger did — leaves an event for a change that did not happen, never a change
without its event. The workspace's credentials data key is made before either transaction
opens, so no stored value can name a data key that a rollback removed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.models import Outcome
from audit.services import audit_event_record, audited_transaction
from governance.access.decision import require
from governance.core.outbound.client import OutboundError
from governance.core.redaction import secret_register
from governance.crypto.keyring import active_key
from governance.crypto.models import DataKey
from governance.crypto.services import data_key_rotate
from workflows.credentials.models import (
    STORE,
    Credential,
    CredentialRunbook,
    CredentialStatus,
    CredentialVersion,
)
from workflows.credentials.selectors import credential_integration
from workflows.events import WorkflowEvent
from workflows.integrations.models import Integration
from workflows.integrations.outbound.client import IntegrationClient
from workflows.service_accounts.models import ServiceAccount, ServiceAccountToken

MAX_VALUE_LENGTH = 16 * 1024


def secret_fingerprint(workspace_id: int, value: str) -> str:
    """A keyed fingerprint: recognisable across screens, useless for guessing the value (it is an
    HMAC under the workspace's credentials data key, not a bare hash of a possibly short secret)."""
    key = active_key(workspace_id, "credentials")
    mac_key = hashlib.sha256(b"fingerprint" + key.aead.encrypt(bytes(12), b"fingerprint-key", b"")).digest()
    digest = hmac.new(mac_key, value.encode(), hashlib.sha256).hexdigest()
    return f"fp:{digest[:16]}"


def _clean_value(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({"value": "Enter the credential's value."})
    if len(value) > MAX_VALUE_LENGTH:
        raise ValidationError({"value": f"A credential is at most {MAX_VALUE_LENGTH} characters."})
    if "\x00" in value:
        raise ValidationError({"value": "The value contains a NUL character."})
    secret_register(value)
    return value


def _event_data(credential: Credential, version: CredentialVersion | None = None, **extra) -> dict:
    data = {
        "credential_id": str(credential.pk),
        "name": credential.name,
        "integration_id": credential.integration_id,
    }
    if version is not None:
        data |= {"version": version.number, "fingerprint": version.fingerprint}
    return data | extra


def _new_version(credential: Credential, value: str, actor, status: str) -> CredentialVersion:
    number = (credential.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = CredentialVersion(
        credential=credential,
        workspace_id=credential.workspace_id,
        number=number,
        status=status,
        fingerprint=secret_fingerprint(credential.workspace_id, value),
        created_by_id=getattr(actor, "pk", None),
    )
    version.value = value
    version.save(using=STORE)
    return version


def credential_create(*, actor, integration: Integration, name: str, value: str) -> Credential:
    """A new credential of ``integration`` whose first version is active at once."""
    require(actor, "credential.manage", integration)
    value = _clean_value(value)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the credential (e.g. api_key)."})
    if Credential.objects.using(STORE).filter(integration_id=integration.pk, name=name).exists():
        raise ValidationError({"name": f"The integration already has a credential named {name!r}."})
    active_key(
        integration.workspace_id, "credentials"
    )  # committed on its own when we are not in a transaction
    with transaction.atomic(using=STORE), audited_transaction():
        credential = Credential.objects.using(STORE).create(
            workspace_id=integration.workspace_id,
            integration_id=integration.pk,
            name=name,
            created_by_id=actor.pk,
        )
        version = _new_version(credential, value, actor, CredentialStatus.ACTIVE)
        version.promoted_at, version.promoted_by_id = timezone.now(), actor.pk
        version.save(using=STORE, update_fields=["promoted_at", "promoted_by_id"])
        audit_event_record(
            action=WorkflowEvent.CREDENTIAL_CREATED,
            actor=actor,
            target=integration,
            workspace_id=integration.workspace_id,
            organization_id=integration.workspace.organization_id,
            data=_event_data(credential, version),
        )
    return credential


def credential_stage(*, actor, credential: Credential, value: str) -> CredentialVersion:
    """Stage a new value; nothing uses it until it is promoted."""
    integration = credential_integration(credential)
    require(actor, "credential.manage", integration)
    value = _clean_value(value)
    active_key(credential.workspace_id, "credentials")
    with transaction.atomic(using=STORE), audited_transaction():
        Credential.objects.using(STORE).select_for_update().get(pk=credential.pk)
        version = _new_version(credential, value, actor, CredentialStatus.STAGED)
        audit_event_record(
            action=WorkflowEvent.CREDENTIAL_VERSION_STAGED,
            actor=actor,
            target=integration,
            workspace_id=credential.workspace_id,
            organization_id=integration.workspace.organization_id,
            data=_event_data(credential, version),
        )
    return version


def credential_test(
    *, actor, version: CredentialVersion, probe: Callable[[Integration, str], tuple[bool, str]] | None = None
) -> CredentialVersion:
    """Try a staged value against the integration before promoting it. ``probe`` gets the
    integration and the value and answers (ok, message); by default an authenticated GET of the
    integration's endpoint through the outbound client."""
    credential = version.credential
    integration = credential_integration(credential)
    require(actor, "credential.manage", integration)
    ok, message = (probe or _http_probe)(integration, version.value)
    with transaction.atomic(using=STORE), audited_transaction():
        version.tested_at, version.test_ok, version.test_message = timezone.now(), ok, message[:300]
        version.save(using=STORE, update_fields=["tested_at", "test_ok", "test_message"])
        audit_event_record(
            action=WorkflowEvent.CREDENTIAL_VERSION_TESTED,
            actor=actor,
            target=integration,
            workspace_id=credential.workspace_id,
            organization_id=integration.workspace.organization_id,
            outcome=Outcome.SUCCESS if ok else Outcome.FAILED,
            data=_event_data(credential, version, message=message[:300]),
        )
    return version


def _http_probe(integration: Integration, value: str) -> tuple[bool, str]:
    secret_register(value)
    if not getattr(integration, "endpoint_url", ""):
        return False, "The integration has no endpoint URL to test against."
    try:
        response = IntegrationClient.for_integration(integration, timeout=10).request(
            "GET", integration.endpoint_url, headers={"Authorization": f"Bearer {value}"}
        )
    except OutboundError as error:
        return False, str(error)
    return response.status < 400, f"HTTP {response.status} {response.reason}"


def credential_promote(*, actor, version: CredentialVersion) -> CredentialVersion:
    """Make a staged version the active one; the previous active one enters its grace period."""
    credential = version.credential
    integration = credential_integration(credential)
    require(actor, "credential.manage", integration)
    now = timezone.now()
    with transaction.atomic(using=STORE), audited_transaction():
        locked = CredentialVersion.objects.using(STORE).select_for_update().get(pk=version.pk)
        if locked.status != CredentialStatus.STAGED:
            raise ValidationError(
                f"Version {locked.number} is {locked.get_status_display().lower()}, not staged."
            )
        previous = CredentialVersion.objects.using(STORE).filter(
            credential=credential, status=CredentialStatus.ACTIVE
        )
        grace_until = now + timedelta(seconds=settings.CREDENTIAL_ROTATION_GRACE_SECONDS)
        previous_numbers = list(previous.values_list("number", flat=True))
        previous.update(status=CredentialStatus.GRACE, grace_until=grace_until)
        locked.status, locked.promoted_at, locked.promoted_by_id = CredentialStatus.ACTIVE, now, actor.pk
        locked.save(using=STORE, update_fields=["status", "promoted_at", "promoted_by_id"])
        Credential.objects.using(STORE).filter(pk=credential.pk).update(rotation_required=False)
        audit_event_record(
            action=WorkflowEvent.CREDENTIAL_VERSION_PROMOTED,
            actor=actor,
            target=integration,
            workspace_id=credential.workspace_id,
            organization_id=integration.workspace.organization_id,
            data=_event_data(credential, locked, previous_versions=previous_numbers, grace_until=grace_until),
        )
    return locked


def credential_versions_expire(*, now=None) -> int:
    """Revoke versions whose grace period is over and erase their values (the beat runs this)."""
    now = now or timezone.now()
    expired = list(
        CredentialVersion.objects.using(STORE)
        .select_related("credential")
        .filter(status=CredentialStatus.GRACE, grace_until__lte=now)
    )
    for version in expired:
        credential_version_revoke(actor=None, version=version, reason="grace period over")
    return len(expired)


def credential_version_revoke(*, actor, version: CredentialVersion, reason: str) -> None:
    """Revoke a version at once and erase its value (it can never be read again)."""
    credential = version.credential
    integration = credential_integration(credential)
    if actor is not None:
        require(actor, "credential.manage", integration)
    with transaction.atomic(using=STORE), audited_transaction():
        CredentialVersion.objects.using(STORE).filter(pk=version.pk).update(
            status=CredentialStatus.REVOKED, revoked_at=timezone.now(), value=None, grace_until=None
        )
        audit_event_record(
            action=WorkflowEvent.CREDENTIAL_VERSION_REVOKED,
            actor=actor,
            target=integration,
            workspace_id=credential.workspace_id,
            organization_id=integration.workspace.organization_id,
            data=_event_data(credential, version, reason=reason),
        )


def credential_value_resolve(*, credential_id, version_number: int | None = None, now=None) -> str:
    """The value an execution uses: the active version, or the version it started with while that
    version's grace period lasts. The value is registered with the log and ledger scrubbers."""
    now = now or timezone.now()
    versions = CredentialVersion.objects.using(STORE).filter(credential_id=credential_id)
    if version_number is None:
        version = versions.filter(status=CredentialStatus.ACTIVE).first()
    else:
        version = versions.filter(number=version_number).first()
        if version is not None and version.status == CredentialStatus.GRACE and version.grace_until <= now:
            version = None
        if version is not None and version.status not in (CredentialStatus.ACTIVE, CredentialStatus.GRACE):
            version = None
    if version is None or version.value is None:
        raise ValidationError("The credential has no valid version to use.")
    value = version.value
    secret_register(value)
    return value


# --- The incident runbook: rotate every credential of a workspace -------------------------------


def credential_runbook_start(*, actor, workspace, reason: str):
    """Start the incident runbook for ``workspace``: a job with progress and a report that marks
    every credential for replacement (ending grace periods at once), revokes every service-account
    token and rotates the workspace's credentials data key."""
    # Tasks sit above services (they call them); a service only starts one once it has committed.
    from workflows.credentials import tasks

    require(actor, "credential.rotate_all", workspace)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why (the incident); it goes into the ledger and the report."})
    with audited_transaction():
        running = CredentialRunbook.objects.filter(workspace=workspace, status="running").first()
        if running is not None:
            raise ValidationError(
                f"A runbook for this workspace is already running (started {running.started_at:%H:%M})."
            )
        runbook = CredentialRunbook.objects.create(
            workspace=workspace, reason=reason, started_by=actor, total=len(_runbook_items(workspace)) + 1
        )
        audit_event_record(
            action=WorkflowEvent.CREDENTIAL_RUNBOOK_STARTED,
            actor=actor,
            target=runbook,
            workspace_id=workspace.pk,
            organization_id=workspace.organization_id,
            data={"reason": reason, "items": runbook.total},
        )
        transaction.on_commit(lambda: tasks.credential_runbook_advance.delay(runbook.pk))
    return runbook


def _runbook_items(workspace) -> list[tuple[str, object]]:
    """The runbook's work, in a fixed order so that a resumed job skips exactly what is done."""
    stored = Credential.objects.using(STORE).filter(workspace_id=workspace.pk).order_by("created_at", "id")
    accounts = ServiceAccount.objects.filter(workspace=workspace).order_by("id")
    return [("credential", c.pk) for c in stored] + [("service_account", a.pk) for a in accounts]


def credential_runbook_advance(*, runbook_id: int):
    """Do the runbook's remaining items, one transaction each, then rotate the data key."""
    runbook = CredentialRunbook.objects.select_related("workspace", "started_by").get(pk=runbook_id)
    items = _runbook_items(runbook.workspace)
    while runbook.status == "running" and runbook.done < len(items):
        kind, item_id = items[runbook.done]
        with transaction.atomic(using=STORE), audited_transaction():
            entry = (_runbook_credential if kind == "credential" else _runbook_account)(runbook, item_id)
            CredentialRunbook.objects.filter(pk=runbook.pk).update(
                done=runbook.done + 1, report=[*runbook.report, entry]
            )
        runbook.refresh_from_db()
    if runbook.status == "running":
        _runbook_finish(runbook)
        runbook.refresh_from_db()
    return runbook


def _runbook_credential(runbook, credential_id) -> dict:
    credential = Credential.objects.using(STORE).select_for_update().get(pk=credential_id)
    credential.rotation_required = True
    credential.save(using=STORE, update_fields=["rotation_required"])
    in_grace = list(credential.versions.using(STORE).filter(status=CredentialStatus.GRACE).defer("value"))
    for version in in_grace:
        CredentialVersion.objects.using(STORE).filter(pk=version.pk).update(
            status=CredentialStatus.REVOKED, revoked_at=timezone.now(), value=None, grace_until=None
        )
    integration = credential_integration(credential)
    audit_event_record(
        action=WorkflowEvent.CREDENTIAL_ROTATION_REQUIRED,
        actor=runbook.started_by,
        target=integration,
        workspace_id=credential.workspace_id,
        organization_id=integration.workspace.organization_id,
        data=_event_data(credential, runbook=runbook.pk, grace_versions_revoked=len(in_grace)),
    )
    return {
        "kind": "credential",
        "name": f"{integration.name} / {credential.name}",
        "done": f"marked for replacement; {len(in_grace)} previous version(s) revoked",
        "next": "stage and promote a new value from the provider",
    }


def _runbook_account(runbook, account_id) -> dict:
    account = ServiceAccount.objects.select_for_update().select_related("workspace").get(pk=account_id)
    live = ServiceAccountToken.objects.filter(service_account=account, revoked_at__isnull=True)
    prefixes = list(live.values_list("prefix", flat=True))
    live.update(revoked_at=timezone.now())
    for prefix in prefixes:
        audit_event_record(
            action=WorkflowEvent.SERVICE_ACCOUNT_TOKEN_REVOKED,
            actor=runbook.started_by,
            target=account,
            workspace_id=account.workspace_id,
            organization_id=account.workspace.organization_id,
            data={"prefix": prefix, "reason": f"incident runbook {runbook.pk}"},
        )
    return {
        "kind": "service_account",
        "name": account.name,
        "done": f"{len(prefixes)} token(s) revoked",
        "next": "a workspace owner issues a new token",
    }


def _runbook_finish(runbook) -> None:
    has_key = DataKey.objects.filter(
        workspace=runbook.workspace, purpose="credentials", status="active"
    ).exists()
    rotating = DataKey.objects.filter(
        workspace=runbook.workspace, purpose="credentials", status="retiring"
    ).exists()
    if has_key and not rotating:
        job = data_key_rotate(actor=None, workspace=runbook.workspace, purpose="credentials")
        entry = {
            "kind": "data_key",
            "name": "credentials data key",
            "done": f"rotation job {job.pk} started ({job.total} values to re-encrypt)",
            "next": "",
        }
    else:
        entry = {
            "kind": "data_key",
            "name": "credentials data key",
            "done": "a rotation is already running" if rotating else "no key yet",
            "next": "",
        }
    with audited_transaction():
        CredentialRunbook.objects.filter(pk=runbook.pk).update(
            status="completed",
            done=runbook.total,
            report=[*runbook.report, entry],
            finished_at=timezone.now(),
        )
        audit_event_record(
            action=WorkflowEvent.CREDENTIAL_RUNBOOK_COMPLETED,
            actor=runbook.started_by,
            target=runbook,
            workspace_id=runbook.workspace_id,
            organization_id=runbook.workspace.organization_id,
            data={
                "items": runbook.total,
                "report": [item["name"] + ": " + item["done"] for item in runbook.report],
            },
        )
