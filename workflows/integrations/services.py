"""Every change to integrations: connecting them (directly or on request, with the manager's
approval where a policy asks for it), their endpoints, connector types and the network allow-list.

Each function re-checks the actor's permission inside its transaction, locks the rows it decides
on and records its ledger event in that transaction.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_event_record, audited_transaction
from governance.access.decision import require
from governance.core.outbound.boundary import (
    CheckedEndpoint,
    allow_rule_destination_clean,
    endpoint_check,
    url_shown,
)
from governance.core.outbound.client import spki_pins_clean
from workflows.events import WorkflowEvent
from workflows.integrations.models import (
    ConnectorType,
    Integration,
    IntegrationRequest,
    NetworkAllowRule,
    RequestStatus,
    Sensitivity,
    VettingStatus,
)
from workflows.integrations.selectors import integration_manager_approved

KEEP: Any = object()  # "leave this field as it is" in integration_update
_NARROWEST_BROAD_PREFIX = {4: 8, 6: 16}  # an allow rule wider than this would lift almost everything


def connector_type_create(
    *, actor, organization, code: str, name: str, maintainer: str, documentation_url: str = ""
) -> ConnectorType:
    """Register a connector type; it waits for vetting (pending) before integrations may use it."""
    with audited_transaction():
        connector = ConnectorType(
            organization=organization,
            code=code,
            name=name.strip(),
            maintainer=maintainer.strip(),
            documentation_url=documentation_url.strip(),
        )
        require(actor, "connector.vet", connector, fresh=True)
        if not connector.maintainer:
            raise ValidationError({"maintainer": "Say who maintains it: the vendor, a team or a person."})
        if ConnectorType.objects.filter(organization=organization, code=code).exists():
            raise ValidationError({"code": "A connector type with this code exists already."})
        connector.full_clean()
        connector.save()
        audit_event_record(
            action=WorkflowEvent.CONNECTOR_CREATED,
            actor=actor,
            target=connector,
            organization_id=organization.pk,
            data={
                "code": connector.code,
                "name": connector.name,
                "maintainer": connector.maintainer,
                "documentation_url": connector.documentation_url,
                "vetting_status": connector.vetting_status,
            },
        )
    return connector


def connector_type_vet(*, actor, connector: ConnectorType, status: str, note: str) -> ConnectorType:
    """Approve, hold (pending) or block a connector type, saying how it was vetted."""
    if status not in VettingStatus.values:
        raise ValidationError({"vetting_status": "Choose approved, pending or blocked."})
    if not note.strip():
        raise ValidationError({"vetting_note": "Say how it was vetted, or why it is held or blocked."})
    with audited_transaction():
        connector = ConnectorType.objects.select_for_update().get(pk=connector.pk)
        require(actor, "connector.vet", connector, fresh=True)
        before = connector.vetting_status
        connector.vetting_status, connector.vetting_note = status, note.strip()
        connector.vetted_by, connector.vetted_at = actor, timezone.now()
        connector.save(update_fields=["vetting_status", "vetting_note", "vetted_by", "vetted_at"])
        audit_event_record(
            action=WorkflowEvent.CONNECTOR_VETTED,
            actor=actor,
            target=connector,
            organization_id=connector.organization_id,
            data={
                "code": connector.code,
                "note": connector.vetting_note,
                "diff": {"vetting_status": {"before": before, "after": status}},
            },
        )
    return connector


def network_allow_rule_create(*, actor, organization, destination: str, reason: str) -> NetworkAllowRule:
    """Let the organisation's integrations reach an internal host name or network, with a reason."""
    try:
        destination = allow_rule_destination_validate(destination)
    except ValidationError as error:
        raise ValidationError({"destination": error.messages}) from None
    if not reason.strip():
        raise ValidationError({"reason": "Say why integrations must reach this destination."})
    with audited_transaction():
        rule = NetworkAllowRule(
            organization=organization, destination=destination, reason=reason.strip(), created_by=actor
        )
        require(actor, "network.allowlist", rule, fresh=True)
        if NetworkAllowRule.objects.filter(organization=organization, destination=destination).exists():
            raise ValidationError({"destination": f"{destination} is allow-listed already."})
        rule.full_clean()
        rule.save()
        audit_event_record(
            action=WorkflowEvent.NETWORK_ALLOW_RULE_CREATED,
            actor=actor,
            target=rule,
            organization_id=organization.pk,
            data={"destination": destination, "reason": rule.reason},
        )
    return rule


def network_allow_rule_remove(*, actor, rule: NetworkAllowRule) -> None:
    """Take an exception off the allow-list; endpoints that needed it are refused from now on."""
    with audited_transaction():
        rule = NetworkAllowRule.objects.select_for_update().get(pk=rule.pk)
        require(actor, "network.allowlist", rule, fresh=True)
        audit_event_record(
            action=WorkflowEvent.NETWORK_ALLOW_RULE_REMOVED,
            actor=actor,
            target=rule,
            organization_id=rule.organization_id,
            data={"destination": rule.destination, "reason": rule.reason},
        )
        rule.delete()


def allow_rule_destination_validate(destination: str) -> str:
    """The normalised destination (host name or CIDR) of a new rule; refused when malformed or too broad."""
    destination = allow_rule_destination_clean(destination)
    try:
        network = ipaddress.ip_network(destination)
    except ValueError:
        return destination  # a host name
    narrowest = _NARROWEST_BROAD_PREFIX[network.version]
    if network.prefixlen < narrowest:
        raise ValidationError(f"{destination} is too broad: allow-list at most a /{narrowest} network.")
    return destination


def connector_usable(connector: ConnectorType | None, *, organization_id: int) -> ConnectorType | None:
    """The connector, locked and re-read, if an integration may use it now; else a field error."""
    if connector is None:
        return None
    connector = ConnectorType.objects.select_for_update().filter(pk=connector.pk).first()
    if connector is None or connector.organization_id != organization_id:
        raise ValidationError({"connector": "Choose a connector type of your organisation."})
    if connector.vetting_status == VettingStatus.BLOCKED:
        note = f" ({connector.vetting_note})" if connector.vetting_note else ""
        raise ValidationError(
            {"connector": f"The connector type {connector.name} is blocked{note}; choose another one."}
        )
    if connector.vetting_status != VettingStatus.APPROVED:
        raise ValidationError(
            {
                "connector": f"The connector type {connector.name} has not been vetted yet; "
                "a compliance officer must approve it first."
            }
        )
    return connector


def endpoint_settings_clean(
    *, organization_id: int, endpoint_url: str, spki_pins: Any
) -> tuple[str, list[str], CheckedEndpoint | None]:
    """The endpoint URL (checked against the network boundary) and pins, or field errors saying why."""
    errors: dict[str, list[str]] = {}
    endpoint_url = (endpoint_url or "").strip()
    checked = None
    if endpoint_url:
        try:
            checked = endpoint_check(endpoint_url, organization=organization_id)
        except ValidationError as error:
            errors["endpoint_url"] = error.messages
    try:
        pins = spki_pins_clean(spki_pins)
    except ValidationError as error:
        errors["spki_pins"] = error.messages
        pins = []
    if errors:
        raise ValidationError(errors)
    return endpoint_url, pins, checked


def integration_update(
    *,
    actor,
    integration: Integration,
    name: str = KEEP,
    connector: ConnectorType | None = KEEP,
    endpoint_url: str = KEEP,
    spki_pins: list[str] = KEEP,
    sensitivity: str = KEEP,
) -> Integration:
    """Change an integration's connector, endpoint, pins, name or (raise only) sensitivity.

    The endpoint is checked against the network boundary again, and the connector must be approved;
    nothing changes, and no event is written, when every value is as it was.
    """
    with audited_transaction():
        integration = (
            Integration.objects.select_for_update(of=("self",))
            .select_related("workspace")
            .get(pk=integration.pk)
        )
        approved = {"manager_approved": integration_manager_approved(integration)}
        require(actor, "integration.manage", integration, approved, fresh=True)
        before = _snapshot(integration)
        _apply_changes(
            integration,
            name=name,
            connector=connector,
            endpoint_url=endpoint_url,
            spki_pins=spki_pins,
            sensitivity=sensitivity,
        )
        after = _snapshot(integration)
        diff = {
            key: {"before": before[key], "after": after[key]} for key in after if before[key] != after[key]
        }
        if not diff:
            return integration
        # The policies judge the integration as it will be (e.g. a raised sensitivity).
        require(actor, "integration.manage", integration, approved, fresh=True)
        integration.full_clean(exclude=["workspace"])
        integration.save(update_fields=["name", "connector", "endpoint_url", "spki_pins", "sensitivity"])
        audit_event_record(
            action=WorkflowEvent.INTEGRATION_UPDATED,
            actor=actor,
            target=integration,
            organization_id=integration.workspace.organization_id,
            workspace_id=integration.workspace_id,
            data={"slug": integration.slug, "diff": diff},
        )
    return integration


def _apply_changes(
    integration: Integration, *, name, connector, endpoint_url, spki_pins, sensitivity
) -> None:
    organization_id = integration.workspace.organization_id
    if name is not KEEP:
        integration.name = name.strip()
    if sensitivity is not KEEP:
        if integration.sensitivity != Sensitivity.NONE and sensitivity == Sensitivity.NONE:
            raise ValidationError(
                {
                    "sensitivity": "The sensitivity of a connected financial or HR system is "
                    "not lowered here: connect the system anew if it changed."
                }
            )
        integration.sensitivity = sensitivity
    chosen = integration.connector if connector is KEEP else connector
    integration.connector = connector_usable(chosen, organization_id=organization_id)
    url, pins, _ = endpoint_settings_clean(
        organization_id=organization_id,
        endpoint_url=integration.endpoint_url if endpoint_url is KEEP else endpoint_url,
        spki_pins=integration.spki_pins if spki_pins is KEEP else spki_pins,
    )
    integration.endpoint_url, integration.spki_pins = url, pins


def _snapshot(integration: Integration) -> dict[str, Any]:
    """What the ledger keeps of an integration's settings (the endpoint without its query)."""
    return {
        "name": integration.name,
        "sensitivity": integration.sensitivity,
        "connector": integration.connector.code if integration.connector_id else None,
        "endpoint": shown_endpoint(integration.endpoint_url),
        "spki_pins": list(integration.spki_pins or []),
    }


def shown_endpoint(url: str) -> str:
    """An endpoint URL without user info and query (a token may hide there), for events."""
    return url_shown(url) if url else ""


# --- Connecting integrations: directly, or on a request that waits for the manager -----------------


def integration_create(
    *,
    actor,
    workspace,
    name: str,
    slug: str,
    kind: str,
    sensitivity: str = "none",
    connector=None,
    endpoint_url: str = "",
    spki_pins: list[str] | None = None,
) -> Integration:
    """Connect an integration directly (the system, or a sensitivity no policy guards).

    A ``connector`` must be an approved connector type; the ``endpoint_url`` must pass the network
    boundary (https, no internal address unless allow-listed).
    """
    with audited_transaction():
        return _connect(
            actor=actor,
            workspace=workspace,
            name=name,
            slug=slug,
            kind=kind,
            sensitivity=sensitivity,
            approved_by=None,
            endpoint={"connector": connector, "endpoint_url": endpoint_url, "spki_pins": spki_pins},
        )


def _connect(*, actor, workspace, name, slug, kind, sensitivity, approved_by, endpoint=None) -> Integration:
    integration = Integration(workspace=workspace, name=name, slug=slug, kind=kind, sensitivity=sensitivity)
    if actor is not None:
        # The manager's approval, when there is one, is a fact the policies are told — never a
        # flag a caller sets: only integration_request_decide passes it.
        require(
            actor,
            "integration.manage",
            integration,
            {"manager_approved": approved_by is not None},
            fresh=True,
        )
    endpoint = endpoint or {}
    integration.connector = connector_usable(
        endpoint.get("connector"), organization_id=workspace.organization_id
    )
    integration.endpoint_url, integration.spki_pins, _ = endpoint_settings_clean(
        organization_id=workspace.organization_id,
        endpoint_url=endpoint.get("endpoint_url", ""),
        spki_pins=endpoint.get("spki_pins"),
    )
    integration.full_clean()
    integration.save()
    audit_event_record(
        action=WorkflowEvent.INTEGRATION_CREATED,
        actor=actor,
        target=integration,
        organization_id=workspace.organization_id,
        workspace_id=workspace.pk,
        data={
            "slug": slug,
            "kind": kind,
            "sensitivity": sensitivity,
            "manager_approval": approved_by.email if approved_by else None,
            "connector": integration.connector.code if integration.connector else None,
            "endpoint": shown_endpoint(integration.endpoint_url),
            "spki_pins": integration.spki_pins,
        },
    )
    return integration


def integration_request_create(
    *, actor, workspace, name: str, slug: str, kind: str, sensitivity: str, reason: str
) -> IntegrationRequest:
    """Ask to connect an integration; a financial or HR one waits for the requester's manager."""
    with audited_transaction():
        require(actor, "integration.manage", workspace, fresh=True)
        if not reason.strip():
            raise ValidationError({"reason": "Say what the integration is for."})
        if Integration.objects.filter(workspace=workspace, slug=slug).exists():
            raise ValidationError({"slug": "An integration with this slug is connected already."})
        request = IntegrationRequest(
            workspace=workspace,
            name=name,
            slug=slug,
            kind=kind,
            sensitivity=sensitivity,
            reason=reason.strip(),
            requested_by=actor,
        )
        request.full_clean()
        sensitive = sensitivity in ("financial", "hr")
        if sensitive and actor.manager_id is None:
            raise ValidationError(
                {
                    "sensitivity": "Connecting a financial or HR system needs your manager's "
                    "approval, and no manager is recorded for you. Ask a platform "
                    "administrator to record your manager."
                }
            )
        request.save()
        audit_event_record(
            action=WorkflowEvent.INTEGRATION_REQUESTED,
            actor=actor,
            target=request,
            organization_id=workspace.organization_id,
            workspace_id=workspace.pk,
            data={"slug": slug, "sensitivity": sensitivity, "reason": request.reason},
        )
        if not sensitive:
            request.integration = _connect(
                actor=actor,
                workspace=workspace,
                name=name,
                slug=slug,
                kind=kind,
                sensitivity=sensitivity,
                approved_by=None,
            )
            request.status = RequestStatus.CONNECTED
            request.save(update_fields=["integration", "status"])
    if request.status == RequestStatus.PENDING:
        transaction.on_commit(lambda: _notify_manager(request.pk))
    return request


def integration_request_decide(
    *, actor, request: IntegrationRequest, approve: bool, comment: str
) -> IntegrationRequest:
    """The requester's manager approves (and the integration is connected) or rejects."""
    with audited_transaction():
        request = (
            IntegrationRequest.objects.select_for_update(of=("self",))
            .select_related("requested_by", "workspace")
            .get(pk=request.pk)
        )
        if request.status != RequestStatus.PENDING:
            raise ValidationError(
                {"status": f"This request is already {request.get_status_display().lower()}."}
            )
        if request.requested_by.manager_id != actor.pk:
            raise ValidationError({"decided_by": "Only the requester's manager decides this request."})
        if not comment.strip():
            raise ValidationError({"comment": "A comment is required: say why."})
        request.decided_by, request.decided_at, request.comment = actor, timezone.now(), comment.strip()
        if approve:
            request.integration = _connect(
                actor=request.requested_by,
                workspace=request.workspace,
                name=request.name,
                slug=request.slug,
                kind=request.kind,
                sensitivity=request.sensitivity,
                approved_by=actor,
            )
            request.status = RequestStatus.CONNECTED
        else:
            request.status = RequestStatus.REJECTED
        request.save(update_fields=["decided_by", "decided_at", "comment", "integration", "status"])
        audit_event_record(
            action=WorkflowEvent.INTEGRATION_REQUEST_APPROVED
            if approve
            else WorkflowEvent.INTEGRATION_REQUEST_REJECTED,
            actor=actor,
            target=request,
            organization_id=request.workspace.organization_id,
            workspace_id=request.workspace_id,
            data={"slug": request.slug, "requester": request.requested_by.email, "comment": request.comment},
        )
    return request


def _notify_manager(request_id: int) -> None:
    # Tasks sit above services (they call them); a service only starts one once it has committed.
    from workflows.integrations.tasks import notify_integration_request

    notify_integration_request.delay(request_id)
