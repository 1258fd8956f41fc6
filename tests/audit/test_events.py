"""Event codes: each app owns its codes as an enum and registers them; the ledger knows no other."""

from __future__ import annotations

import pytest

from accounts.events import AccountEvent
from audit.events import Category, EventCode, category_of, known_codes, register_event_codes
from governance.access.events import AccessEvent
from governance.crypto.events import CryptoEvent
from governance.tenancy.events import TenancyEvent
from workflows.events import WorkflowEvent


def test_every_apps_codes_are_registered_at_start_up():
    """GIVEN the installed apps WHEN Django has started THEN every member of every app's enum is known
    with the category its member declares."""
    for enum in (AccountEvent, AccessEvent, CryptoEvent, TenancyEvent, WorkflowEvent):
        for member in enum:
            assert category_of(member) == member.category
            assert member.value in known_codes()


def test_a_member_is_its_code():
    assert WorkflowEvent.WORKFLOW_CHANGE_SUBMITTED == "workflow.change.submitted"
    assert str(TenancyEvent.MEMBERSHIP_CREATED) == "membership.created"
    assert TenancyEvent.MEMBERSHIP_CREATED.category is Category.ADMIN


def test_registering_a_known_code_under_another_category_is_refused():
    class Clash(EventCode):
        CREATED = "workflow.created", Category.SYSTEM

    with pytest.raises(ValueError, match="already registered"):
        register_event_codes(Clash)
    assert category_of("workflow.created") == Category.WORKFLOW_LIFECYCLE


def test_an_unregistered_code_has_no_category():
    assert category_of("workflow.teleported") is None
