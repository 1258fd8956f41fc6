"""Connecting integrations: financial and HR systems only with the requester's manager's approval
(the sensitive-integration-manager-approval policy), end to end in the service and the pages."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEvent
from governance.access.decision import AccessDenied
from governance.core.errors import ReasonedRefusal
from tests.conftest import member
from tests.factories import UserFactory
from workflows.integrations import services
from workflows.integrations.models import Integration, IntegrationRequest


@pytest.fixture
def owner(world):
    """The workspace owner, whose manager is recorded."""
    manager = UserFactory(organization=world.org, email="cfo@acme.test", region="EU")
    owner = world.users["workspace_owner"]
    owner.manager = manager
    owner.save(update_fields=["manager"])
    world.manager = manager
    return owner


def test_hr_integration_waits_for_the_manager(world, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = services.integration_request_create(
            actor=owner,
            workspace=world.ws,
            name="HR",
            slug="hris",
            kind="hris",
            sensitivity="hr",
            reason="payroll export",
        )
    assert request.status == "pending"
    assert not Integration.objects.filter(slug="hris").exists()
    assert mail.outbox[-1].to == ["cfo@acme.test"]
    with pytest.raises(ReasonedRefusal, match="requester's manager"):
        services.integration_request_decide(actor=owner, request=request, approve=True, comment="me")
    with pytest.raises(ReasonedRefusal, match="requester's manager"):
        services.integration_request_decide(
            actor=world.users["compliance_officer"], request=request, approve=True, comment="ok"
        )
    done = services.integration_request_decide(
        actor=world.manager, request=request, approve=True, comment="budgeted"
    )
    assert done.status == "connected"
    created = AuditEvent.objects.get(action="integration.created")
    assert created.data["manager_approval"] == "cfo@acme.test"
    assert created.actor_id == owner.pk
    assert AuditEvent.objects.filter(
        action="integration.request.approved", actor_id=world.manager.pk
    ).exists()


def test_direct_connection_of_a_financial_system_is_denied_with_the_reason(world, owner):
    with pytest.raises(
        AccessDenied, match="connecting a financial integration needs your manager's approval"
    ):
        services.integration_create(
            actor=owner, workspace=world.ws, name="ERP", slug="erp", kind="erp", sensitivity="financial"
        )
    assert not Integration.objects.filter(slug="erp").exists()


def test_ordinary_integrations_connect_at_once(world, owner):
    request = services.integration_request_create(
        actor=owner,
        workspace=world.ws,
        name="CRM",
        slug="crm",
        kind="crm",
        sensitivity="none",
        reason="tickets",
    )
    assert request.status == "connected"
    assert request.integration.slug == "crm"


def test_without_a_manager_the_request_says_what_to_do(world):
    owner = world.users["workspace_owner"]
    with pytest.raises(ValidationError, match="no manager is recorded"):
        services.integration_request_create(
            actor=owner,
            workspace=world.ws,
            name="HR",
            slug="hris",
            kind="hris",
            sensitivity="hr",
            reason="payroll",
        )
    assert not IntegrationRequest.objects.exists()


def test_builders_cannot_connect_integrations(world):
    with pytest.raises(AccessDenied):
        services.integration_request_create(
            actor=world.users["workflow_builder"],
            workspace=world.ws,
            name="X",
            slug="x",
            kind="x",
            sensitivity="none",
            reason="mine",
        )


def test_pages_request_and_manager_decision(world, owner, client):
    client.force_login(owner)
    response = client.post(reverse("integrations"), {"workspace": world.ws.pk, "name": "Payroll", "slug": "payroll",
                                                     "kind": "erp", "sensitivity": "financial",
                                                     "reason": "monthly run"}, follow=True)  # fmt: skip
    assert "your manager has been asked" in response.content.decode()
    request = IntegrationRequest.objects.get(slug="payroll")
    assert (
        client.post(
            reverse("integration-request", args=[request.pk]), {"decision": "approve", "comment": "self"}
        ).status_code
        == 403
    )
    member(world.manager, "viewer", world.sibling)  # the manager needs no role in the workspace
    client.force_login(world.manager)
    page = client.get(reverse("integration-request", args=[request.pk])).content.decode()
    assert "Approve and connect" in page
    client.post(reverse("integration-request", args=[request.pk]), {"decision": "approve", "comment": "ok"})
    request.refresh_from_db()
    assert request.status == "connected"
    client.force_login(world.users["workflow_builder"])
    assert client.get(reverse("integration-request", args=[request.pk])).status_code == 404


def test_api_request_and_manager_decision(world, owner):
    from rest_framework.test import APIClient

    requester = APIClient()
    requester.force_authenticate(owner)
    created = requester.post(reverse("api-integration-request-list"), {
        "workspace": world.ws.pk, "name": "HR", "slug": "hris", "kind": "hris", "sensitivity": "hr",
        "reason": "payroll"}, format="json")  # fmt: skip
    assert created.status_code == 201
    assert created.json()["status"] == "pending"
    self_approval = requester.post(
        reverse("api-integration-request-decide", args=[created.json()["id"]]),
        {"approve": True, "comment": "me"},
        format="json",
    )
    assert self_approval.status_code == 403
    assert "requester's manager" in self_approval.json()["detail"]
    member(world.manager, "viewer", world.sibling)
    manager = APIClient()
    manager.force_authenticate(world.manager)
    decided = manager.post(
        reverse("api-integration-request-decide", args=[created.json()["id"]]),
        {"approve": True, "comment": "ok"},
        format="json",
    )
    assert decided.status_code == 200
    assert decided.json()["status"] == "connected"
    bad = requester.post(
        reverse("api-integration-request-list"),
        {"workspace": world.ws.pk, "slug": "Not A Slug", "sensitivity": "nuclear"},
        format="json",
    )
    assert bad.status_code == 400
    assert {"slug", "sensitivity", "name", "kind", "reason"} <= set(bad.json())
