"""A workspace's AI limits: set by owners and compliance officers with a reason, recorded with the
values before and after; bad values are field errors; nobody else, and no other organisation, sees them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from governance.access.decision import AccessDenied
from tests.conftest import member
from tests.factories import OrganizationFactory, UserFactory, WorkspaceFactory
from workflows.executions.ai_controls import ai_controls_set
from workflows.executions.models import AIControls

pytestmark = pytest.mark.django_db


def _set(world, who="workspace_owner", **values):
    return ai_controls_set(
        actor=world.users[who] if isinstance(who, str) else who, workspace=world.ws,
        **({"risk_threshold": 0.4, "max_calls_per_execution": 5, "daily_token_budget": 9000, "reason": "Pilot"} | values),
    )  # fmt: skip


def test_an_owner_sets_the_limits_and_the_ledger_keeps_before_and_after(shop, settings):
    controls = _set(shop)
    assert (controls.risk_threshold, controls.max_calls_per_execution, controls.daily_token_budget) == (
        0.4,
        5,
        9000,
    )
    event = AuditEvent.objects.get(action="ai.controls_changed")
    assert event.data["before"]["max_calls_per_execution"] == settings.AI_MAX_CALLS_PER_EXECUTION
    assert event.data["after"] == {
        "risk_threshold": 0.4,
        "max_calls_per_execution": 5,
        "daily_token_budget": 9000,
    }
    assert event.data["reason"] == "Pilot"
    _set(shop, "compliance_officer", max_calls_per_execution=7, reason="More steps")
    assert AIControls.objects.get().max_calls_per_execution == 7
    changed = AuditEvent.objects.get(action="ai.controls_changed", data__reason="More steps")
    assert changed.data["before"]["max_calls_per_execution"] == 5


@pytest.mark.parametrize("who", ["workflow_builder", "workflow_operator", "viewer", "auditor"])
def test_only_owners_and_officers_set_them(shop, who):
    with pytest.raises(AccessDenied):
        _set(shop, who)
    assert not AIControls.objects.exists()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"risk_threshold": 1.5}, "risk_threshold"),
        ({"risk_threshold": -0.1}, "risk_threshold"),
        ({"risk_threshold": float("nan")}, "risk_threshold"),
        ({"max_calls_per_execution": 0}, "max_calls_per_execution"),
        ({"daily_token_budget": 10**12}, "daily_token_budget"),
        ({"reason": ""}, "reason"),
        ({"reason": "bad\x00reason"}, "reason"),
    ],
)
def test_bad_values_are_field_errors(shop, values, field):
    with pytest.raises(ValidationError) as refused:
        _set(shop, **values)
    assert field in refused.value.message_dict
    assert not AIControls.objects.exists()


def test_the_control_panel_sets_them_with_field_errors_and_hides_other_organisations(shop, client):
    officer = shop.users["compliance_officer"]
    client.force_login(officer)
    add = reverse("admin:workflows_aicontrols_add")
    page = client.post(add, {"workspace": shop.ws.pk, "risk_threshold": "7", "max_calls_per_execution": "3",
                             "daily_token_budget": "100", "reason": "‮ hostile"})  # fmt: skip
    assert page.status_code == 200
    assert "risk_threshold" in page.content.decode()
    assert not AIControls.objects.exists()
    done = client.post(add, {"workspace": shop.ws.pk, "risk_threshold": "0.6", "max_calls_per_execution": "3",
                             "daily_token_budget": "100", "reason": "Pilot ‮ ok"})  # fmt: skip
    assert done.status_code == 302, done.content.decode()[:3000]
    controls = AIControls.objects.get()
    assert controls.updated_by == officer
    other = OrganizationFactory()
    stranger = UserFactory(organization=other)
    member(stranger, "compliance_officer", WorkspaceFactory(organization=other))
    client = Client()
    client.force_login(stranger)
    assert client.get(reverse("admin:workflows_aicontrols_change", args=[controls.pk])).status_code in (
        302,
        403,
        404,
    )
    listing = client.get(reverse("admin:workflows_aicontrols_changelist"))
    assert listing.status_code in (200, 302, 403)
    assert reverse("admin:workflows_aicontrols_change", args=[controls.pk]) not in listing.content.decode()
