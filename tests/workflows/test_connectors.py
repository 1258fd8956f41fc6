"""Connector types and their vetting, the network allow-list, and integration endpoints: services,
their ledger events, and the control-panel forms that show a refused endpoint on its field."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import AuditError
from governance.access.decision import AccessDenied
from governance.core.outbound import boundary
from workflows.integrations import services
from workflows.integrations.models import ConnectorType, Integration, IntegrationRequest, NetworkAllowRule

DNS = {"api.crm.example": ["93.184.216.34"], "crm.internal.acme": ["10.3.0.7"]}


@pytest.fixture(autouse=True)
def _fake_dns(monkeypatch):
    """Names resolve from a fixed table: tests never depend on the network's DNS."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in DNS:
            raise OSError("unknown host")
        return DNS[host]

    monkeypatch.setattr(boundary, "system_resolver", resolve)


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def new_connector(world, *, code="crm-api", status=None) -> ConnectorType:
    connector = services.connector_type_create(actor=world.users["compliance_officer"], organization=world.org,
                                               code=code, name=code.upper(), maintainer="Vendor Inc. (support)")  # fmt: skip
    if status is not None:
        connector = services.connector_type_vet(
            actor=world.users["compliance_officer"], connector=connector, status=status, note="reviewed"
        )
    return connector


def connect(world, **endpoint) -> Integration:
    return services.integration_create(actor=world.users["workspace_owner"], workspace=world.ws, name="CRM",
                                       slug="crm", kind="crm", **endpoint)  # fmt: skip


# --- Connector types and vetting ----------------------------------------------------------------------


def test_a_new_connector_type_is_pending_and_recorded(world):
    connector = new_connector(world)
    assert connector.vetting_status == "pending"
    (created,) = events("connector.created")
    assert created.data["maintainer"] == "Vendor Inc. (support)"
    assert created.actor_id == world.users["compliance_officer"].pk


@pytest.mark.parametrize("role", ["workflow_builder", "workspace_owner", "auditor", "workflow_operator"])
def test_only_officers_and_platform_admins_vet(world, role):
    """GIVEN a pending connector WHEN a builder (or owner, auditor, operator) vets it THEN it is denied."""
    connector = new_connector(world)
    with pytest.raises(AccessDenied, match="vet connector types"):
        services.connector_type_vet(
            actor=world.users[role], connector=connector, status="approved", note="fine"
        )
    connector.refresh_from_db()
    assert connector.vetting_status == "pending"
    assert not events("connector.vetted")


def test_a_compliance_officer_vets_with_a_note(world):
    connector = new_connector(world)
    with pytest.raises(ValidationError, match="Say how it was vetted"):
        services.connector_type_vet(
            actor=world.users["compliance_officer"], connector=connector, status="approved", note=" "
        )
    vetted = services.connector_type_vet(actor=world.users["compliance_officer"], connector=connector,
                                         status="approved", note="Vendor assessment VA-12, pen test 2026-05")  # fmt: skip
    assert (vetted.vetting_status, vetted.vetted_by) == ("approved", world.users["compliance_officer"])
    assert vetted.vetted_at is not None
    (event,) = events("connector.vetted")
    assert event.data["diff"] == {"vetting_status": {"before": "pending", "after": "approved"}}
    assert event.data["note"] == "Vendor assessment VA-12, pen test 2026-05"


def test_a_platform_admin_may_block(world):
    connector = new_connector(world, status="approved")
    blocked = services.connector_type_vet(
        actor=world.users["platform_admin"], connector=connector, status="blocked", note="CVE-2026-1234"
    )
    assert blocked.vetting_status == "blocked"


def test_builders_cannot_register_connector_types(world):
    with pytest.raises(AccessDenied):
        services.connector_type_create(actor=world.users["workflow_builder"], organization=world.org,
                                       code="x", name="X", maintainer="me")  # fmt: skip
    assert not ConnectorType.objects.exists()


def test_no_connector_type_without_its_ledger_event(world):
    """If the event cannot be written, the connector type is not created either (fail closed)."""
    with (
        mock.patch(
            "workflows.integrations.services.audit_event_record", side_effect=AuditError("ledger down")
        ),
        pytest.raises(AuditError),
    ):
        new_connector(world)
    assert not ConnectorType.objects.exists()


# --- Integrations and their connector -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [("pending", "has not been vetted yet"), ("blocked", r"is blocked \(reviewed\); choose another one")],
)
def test_unapproved_connectors_are_refused_for_new_integrations(world, status, message):
    connector = new_connector(world)
    if status != "pending":
        services.connector_type_vet(actor=world.users["compliance_officer"], connector=connector, status=status,
                                    note="reviewed")  # fmt: skip
    with pytest.raises(ValidationError, match=message) as refused:
        connect(world, connector=connector, endpoint_url="https://api.crm.example/")
    assert "connector" in refused.value.message_dict
    assert not Integration.objects.filter(slug="crm").exists()


def test_another_organisations_connector_is_refused(world):
    foreign = ConnectorType.objects.create(
        organization=world.foreign_org, code="g", name="G", maintainer="Globex", vetting_status="approved"
    )
    with pytest.raises(ValidationError, match="Choose a connector type of your organisation"):
        connect(world, connector=foreign)


def test_an_integration_with_an_approved_connector_and_endpoint(world):
    connector = new_connector(world, status="approved")
    integration = connect(world, connector=connector, endpoint_url="https://api.crm.example/v2?token=abc",
                          spki_pins=["sha256/" + "B" * 43 + "="])  # fmt: skip
    assert integration.connector == connector
    assert integration.spki_pins == ["B" * 43 + "="]
    (created,) = events("integration.created")
    assert created.data["connector"] == "crm-api"
    assert created.data["endpoint"] == "https://api.crm.example/v2"  # the query (a token) is not kept


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.crm.example/", "Only https:// endpoints are allowed."),
        ("https://crm.internal.acme/", "crm.internal.acme resolves to 10.3.0.7, which is a private address"),
        ("https://0x7f.1/", "127.0.0.1 is a loopback address"),
        ("https://[::ffff:169.254.169.254]/", "cloud metadata address"),
        ("https://ops:pw@api.crm.example/", "User names and passwords in the URL are not allowed"),
    ],
)
def test_refused_endpoints_are_field_errors(world, url, reason):
    with pytest.raises(ValidationError) as refused:
        connect(world, endpoint_url=url)
    assert reason in " ".join(refused.value.message_dict["endpoint_url"])
    assert not Integration.objects.filter(slug="crm").exists()
    assert not events("integration.created")


def test_bad_pins_are_field_errors(world):
    with pytest.raises(ValidationError) as refused:
        connect(world, endpoint_url="https://api.crm.example/", spki_pins=["not-a-hash"])
    assert "is not a base64 SHA-256 hash" in refused.value.message_dict["spki_pins"][0]


def test_integrations_created_before_connectors_still_work(world):
    """Existing callers (the request flow) pass no connector and no endpoint."""
    integration = connect(world)
    assert (integration.connector, integration.endpoint_url, integration.spki_pins) == (None, "", [])


# --- Updating an integration ---------------------------------------------------------------------------


def test_update_checks_the_endpoint_and_records_the_diff(world):
    integration = connect(world, endpoint_url="https://api.crm.example/")
    owner = world.users["workspace_owner"]
    with pytest.raises(ValidationError, match="private address"):
        services.integration_update(
            actor=owner, integration=integration, endpoint_url="https://crm.internal.acme/"
        )
    integration.refresh_from_db()
    assert integration.endpoint_url == "https://api.crm.example/"
    services.integration_update(
        actor=owner, integration=integration, endpoint_url="https://api.crm.example/v3"
    )
    (updated,) = events("integration.updated")
    assert updated.data["diff"] == {
        "endpoint": {"before": "https://api.crm.example/", "after": "https://api.crm.example/v3"}
    }
    services.integration_update(
        actor=owner, integration=integration, endpoint_url="https://api.crm.example/v3"
    )
    assert len(events("integration.updated")) == 1  # nothing changed, nothing recorded


def test_update_refuses_a_blocked_connector_and_lowering_sensitivity(world):
    owner = world.users["workspace_owner"]
    integration = connect(world)
    blocked = new_connector(world, code="old", status="blocked")
    with pytest.raises(ValidationError, match="is blocked"):
        services.integration_update(actor=owner, integration=integration, connector=blocked)
    Integration.objects.filter(pk=integration.pk).update(sensitivity="financial")
    integration.refresh_from_db()
    with pytest.raises(AccessDenied, match="needs your manager's approval"):  # no approval on record
        services.integration_update(actor=owner, integration=integration, name="ERP")
    IntegrationRequest.objects.create(workspace=world.ws, name="CRM", slug="crm", kind="crm", reason="ledger",
                                      sensitivity="financial", requested_by=owner, status="connected",
                                      decided_by=world.users["platform_admin"], integration=integration)  # fmt: skip
    with pytest.raises(ValidationError, match="not lowered here"):
        services.integration_update(actor=owner, integration=integration, sensitivity="none")
    renamed = services.integration_update(actor=owner, integration=integration, name="ERP")
    assert (renamed.name, renamed.sensitivity) == ("ERP", "financial")


def test_builders_cannot_change_integrations(world):
    integration = connect(world)
    with pytest.raises(AccessDenied):
        services.integration_update(
            actor=world.users["workflow_builder"],
            integration=integration,
            endpoint_url="https://api.crm.example/",
        )


def test_removing_an_allow_rule_refuses_the_endpoint_at_the_next_change(world):
    admin = world.users["platform_admin"]
    rule = services.network_allow_rule_create(actor=admin, organization=world.org, destination="crm.internal.acme",
                                              reason="on-premises CRM")  # fmt: skip
    integration = connect(world, endpoint_url="https://crm.internal.acme/")
    services.network_allow_rule_remove(actor=admin, rule=rule)
    with pytest.raises(ValidationError, match="private address"):
        services.integration_update(
            actor=world.users["workspace_owner"], integration=integration, name="CRM 2"
        )
    assert [e.data["destination"] for e in events("network.allow_rule_removed")] == ["crm.internal.acme"]


# --- The allow-list -----------------------------------------------------------------------------------


def test_only_platform_admins_allow_list(world):
    for role in ("compliance_officer", "workspace_owner"):
        with pytest.raises(AccessDenied, match="reach private or loopback addresses"):
            services.network_allow_rule_create(actor=world.users[role], organization=world.org,
                                               destination="10.0.0.0/24", reason="x")  # fmt: skip
    rule = services.network_allow_rule_create(actor=world.users["platform_admin"], organization=world.org,
                                              destination="10.0.0.7", reason="build server")  # fmt: skip
    assert rule.destination == "10.0.0.7/32"
    (created,) = events("network.allow_rule_created")
    assert created.data == {"destination": "10.0.0.7/32", "reason": "build server"}


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("0.0.0.0/0", "too broad"),
        ("::/0", "too broad"),
        ("10.0.0.1/8", "has host bits set"),
        ("bad host!", "is not a valid host name"),
        ("", "Enter a host name or a network"),
    ],
)
def test_malformed_or_broad_rules_are_refused(world, destination, message):
    with pytest.raises(ValidationError, match=message):
        services.network_allow_rule_create(actor=world.users["platform_admin"], organization=world.org,
                                           destination=destination, reason="x")  # fmt: skip
    assert not NetworkAllowRule.objects.exists()


# --- The control panel ----------------------------------------------------------------------------------


def test_the_admin_form_shows_why_an_endpoint_is_refused(world, client):
    client.force_login(world.users["workspace_owner"])
    url = reverse("admin:workflows_integration_add")
    data = {"workspace": world.ws.pk, "name": "CRM", "slug": "crm", "kind": "crm", "sensitivity": "none",
            "connector": "", "spki_pins": ""}  # fmt: skip
    for endpoint, reason in (
        ("http://api.crm.example/", "Only https:// endpoints are allowed."),
        ("https://2130706433/", "127.0.0.1 is a loopback address; an administrator must allow-list it."),
        ("https://crm.internal.acme/", "crm.internal.acme resolves to 10.3.0.7, which is a private address"),
    ):
        response = client.post(url, {**data, "endpoint_url": endpoint})
        assert response.status_code == 200
        assert reason in response.context["adminform"].form.errors["endpoint_url"][0]
    assert not Integration.objects.exists()
    response = client.post(url, {**data, "endpoint_url": "https://api.crm.example/"})
    assert response.status_code == 302
    assert Integration.objects.get(slug="crm").endpoint_url == "https://api.crm.example/"


def test_the_admin_form_refuses_unvetted_connectors_and_sensitive_systems(world, client):
    pending = new_connector(world)
    client.force_login(world.users["workspace_owner"])
    response = client.post(reverse("admin:workflows_integration_add"), {
        "workspace": world.ws.pk, "name": "Payroll", "slug": "payroll", "kind": "erp", "sensitivity": "financial",
        "connector": pending.pk, "endpoint_url": "https://api.crm.example/", "spki_pins": ""})  # fmt: skip
    errors = response.context["adminform"].form.errors
    assert "has not been vetted yet" in errors["connector"][0]
    assert "needs your manager's approval" in errors["sensitivity"][0]
    assert not Integration.objects.exists()


def test_officers_vet_in_the_control_panel(world, client):
    connector = new_connector(world)
    url = reverse("admin:workflows_connectortype_change", args=[connector.pk])
    client.force_login(world.users["compliance_officer"])
    page = client.get(url).content.decode()
    assert "Vendor Inc. (support)" in page
    missing_note = client.post(url, {"decision": "approved", "note": ""})
    assert "This field is required" in missing_note.content.decode()
    assert client.post(url, {"decision": "approved", "note": "assessed"}).status_code == 302
    connector.refresh_from_db()
    assert (connector.vetting_status, connector.vetting_note) == ("approved", "assessed")
    assert len(events("connector.vetted")) == 1


def test_owners_cannot_open_the_vetting_page(world, client):
    connector = new_connector(world)
    client.force_login(world.users["workspace_owner"])
    url = reverse("admin:workflows_connectortype_change", args=[connector.pk])
    assert client.post(url, {"decision": "approved", "note": "mine"}).status_code in (302, 403)
    connector.refresh_from_db()
    assert connector.vetting_status == "pending"


def test_platform_admins_keep_the_allow_list_in_the_control_panel(world, client):
    client.force_login(world.users["platform_admin"])
    add = reverse("admin:workflows_networkallowrule_add")
    broad = client.post(add, {"destination": "0.0.0.0/0", "reason": "everything"})
    assert "too broad" in broad.context["adminform"].form.errors["destination"][0]
    assert client.post(add, {"destination": "10.3.0.7", "reason": "on-premises CRM"}).status_code == 302
    rule = NetworkAllowRule.objects.get()
    assert rule.destination == "10.3.0.7/32"
    delete = reverse("admin:workflows_networkallowrule_delete", args=[rule.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not NetworkAllowRule.objects.exists()
    assert len(events("network.allow_rule_removed")) == 1
