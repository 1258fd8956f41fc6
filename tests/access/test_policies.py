"""The security guide's four attribute rules, with their edges, and the engine's guarantees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.access import cedar
from governance.access.models import OnCallOverride, Policy
from governance.access.policies import evaluate_request, policies_in_force


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


TUESDAY_1940_BERLIN = at("2026-06-16T17:40:00")  # CEST, UTC+2
TUESDAY_1000_BERLIN = at("2026-06-16T08:00:00")
SATURDAY_1000_BERLIN = at("2026-06-20T08:00:00")


def workflow(**overrides) -> dict:
    return {"data_region": "EU", "handles_pii": False, "environment": "production", **overrides}


def check(world, user, action, *, kind="Workflow", attributes=None, when=TUESDAY_1000_BERLIN, **extra):
    compiled = policies_in_force(world.org.pk, world.ws.pk)
    return evaluate_request(
        user,
        action,
        kind=kind,
        resource_id=1,
        attributes=attributes or workflow(),
        workspace=world.ws,
        extra={"at": when, **extra},
        compiled=compiled,
    )


@pytest.fixture
def builder(world):
    user = world.users["workflow_builder"]
    user.region = "EU"
    user.save(update_fields=["region"])
    return user


# --- a. region ------------------------------------------------------------------------------


def test_region_match_allows_and_mismatch_denies_with_a_plain_reason(world, builder):
    assert not check(world, builder, "workflow.view").forbidden
    outcome = check(world, builder, "workflow.view", attributes=workflow(data_region="US"))
    assert outcome.forbidden
    assert outcome.policies == ("region-data-residency",)
    assert outcome.messages == (
        "Denied by policy region-data-residency: this workflow processes US data and your region is EU.",
    )


def test_a_person_without_a_region_is_denied(world, builder):
    builder.region = ""
    outcome = check(world, builder, "workflow.view")
    assert outcome.forbidden
    assert "your region is not set" in outcome.messages[0]


# --- b. PII needs a privacy approval ---------------------------------------------------------


def test_pii_change_takes_effect_only_with_privacy_approval(world, builder):
    pii = workflow(handles_pii=True, environment="staging")
    assert check(world, builder, "workflow.activate", attributes=pii).policies == ("pii-privacy-approval",)
    assert not check(world, builder, "workflow.activate", attributes=pii, privacy_approved=True).forbidden
    assert not check(
        world, builder, "workflow.activate", attributes=workflow(environment="staging")
    ).forbidden


# --- c. production in business hours unless on call ---------------------------------------------


def test_production_change_outside_business_hours_is_denied_with_the_local_time(world, builder):
    outcome = check(world, builder, "workflow.edit", when=TUESDAY_1940_BERLIN)
    assert outcome.policies == ("production-business-hours",)
    assert outcome.messages == ("Denied by policy production-business-hours: it is 19:40 in Europe/Berlin, "
                                "outside 09:00–18:00. Request an on-call override.",)  # fmt: skip
    assert not check(world, builder, "workflow.edit", when=TUESDAY_1000_BERLIN).forbidden
    assert check(world, builder, "execution.trigger", when=SATURDAY_1000_BERLIN).forbidden
    assert not check(
        world, builder, "workflow.edit", attributes=workflow(environment="staging"), when=TUESDAY_1940_BERLIN
    ).forbidden
    assert not check(world, builder, "workflow.view", when=TUESDAY_1940_BERLIN).forbidden


@pytest.mark.parametrize(
    ("utc", "allowed"),
    [
        ("2026-06-16T06:59:59", False),  # 08:59:59 CEST
        ("2026-06-16T07:00:00", True),  # 09:00 CEST
        ("2026-06-16T15:59:59", True),  # 17:59:59 CEST
        ("2026-06-16T16:00:00", False),  # 18:00 CEST
        # The autumn DST change (25 October 2026, CEST → CET): 09:00 local moves from 07:00 to 08:00 UTC.
        ("2026-10-23T07:00:00", True),  # Friday 09:00 CEST
        ("2026-10-26T07:00:00", False),  # Monday 08:00 CET
        ("2026-10-26T08:00:00", True),  # Monday 09:00 CET
        # The spring change (29 March 2026, CET → CEST).
        ("2026-03-27T16:59:00", True),  # Friday 17:59 CET
        ("2026-03-30T16:00:00", False),  # Monday 18:00 CEST
    ],
)
def test_business_hours_follow_the_workspace_time_zone_across_dst(world, builder, utc, allowed):
    assert check(world, builder, "workflow.edit", when=at(utc)).forbidden is not allowed


def test_on_call_override_lifts_the_rule_until_it_expires(world, builder):
    override = OnCallOverride.objects.create(
        user=builder,
        workspace=world.ws,
        reason="incident 42",
        starts_at=TUESDAY_1940_BERLIN - timedelta(hours=1),
        ends_at=TUESDAY_1940_BERLIN + timedelta(seconds=1),
    )
    assert not check(world, builder, "workflow.edit", when=TUESDAY_1940_BERLIN).forbidden
    a_second_after = TUESDAY_1940_BERLIN + timedelta(seconds=1)
    assert check(world, builder, "workflow.edit", when=a_second_after).forbidden  # expired a second ago
    override.ended_at = TUESDAY_1940_BERLIN - timedelta(minutes=1)
    override.save()
    assert check(world, builder, "workflow.edit", when=TUESDAY_1940_BERLIN).forbidden  # ended early


def test_an_override_in_another_workspace_does_not_count(world, builder):
    OnCallOverride.objects.create(
        user=builder,
        workspace=world.sibling,
        reason="elsewhere",
        starts_at=TUESDAY_1940_BERLIN - timedelta(hours=1),
        ends_at=TUESDAY_1940_BERLIN + timedelta(hours=1),
    )
    assert check(world, builder, "workflow.edit", when=TUESDAY_1940_BERLIN).forbidden


# --- d. financial and HR integrations need the manager ---------------------------------------------


@pytest.mark.parametrize(
    ("sensitivity", "approved", "forbidden"),
    [("financial", False, True), ("hr", False, True), ("financial", True, False), ("none", False, False)],
)
def test_sensitive_integration_needs_manager_approval(world, builder, sensitivity, approved, forbidden):
    extra = {"manager_approved": True} if approved else {}
    outcome = check(
        world,
        builder,
        "integration.manage",
        kind="Integration",
        attributes={"sensitivity": sensitivity},
        **extra,
    )
    assert outcome.forbidden is forbidden
    if forbidden:
        assert f"connecting a {sensitivity} integration needs your manager's approval" in outcome.messages[0]


# --- engine guarantees ----------------------------------------------------------------------------


def test_missing_resource_attributes_deny(world, builder):
    outcome = check(world, builder, "workflow.edit", attributes={"data_region": "EU", "handles_pii": False})
    assert outcome.forbidden
    assert "could not be evaluated" in outcome.messages[0]


def test_bad_policy_text_is_refused_with_the_line():
    text = '@id("x")\nforbid(principal, action, resource is Portal::Workflow)\nwhen { resource.enviroment == "x" };'
    errors = cedar.validate_policy_text(text)
    assert [(e.line, "enviroment" in e.message) for e in errors] == [(3, True)]
    assert cedar.validate_policy_text('@id("p") permit(principal, action, resource);')[0].message.startswith(
        "Policies may only forbid"
    )
    assert "@id" in cedar.validate_policy_text("forbid(principal, action, resource);")[0].message
    assert cedar.validate_policy_text("   // nothing\n")[0].message == "The text holds no policy."
    assert (
        cedar.validate_policy_text('@id("x")\nforbid(principal, action, resource)\nwhen { 1 + };')[0].line
        == 3
    )


ATTRIBUTE = st.fixed_dictionaries(
    {
        "data_region": st.sampled_from(["EU", "US"]),
        "handles_pii": st.booleans(),
        "environment": st.sampled_from(["production", "staging", "development"]),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    attributes=ATTRIBUTE,
    action=st.sampled_from(["workflow.view", "workflow.edit", "workflow.activate", "execution.trigger"]),
    hour=st.integers(min_value=0, max_value=23),
    extra_permits=st.integers(min_value=0, max_value=3),
    privacy=st.booleans(),
)
def test_property_a_forbid_beats_any_permit(world, builder, attributes, action, hour, extra_permits, privacy):
    """Whatever permits are added, the result is exactly: denied iff one of the rules forbids."""
    when = at(f"2026-06-16T{hour:02d}:30:00")
    permits = "".join(
        f'@id("permit-{i}")\npermit(principal, action, resource);\n' for i in range(extra_permits)
    )
    in_force = tuple(
        Policy.objects.filter(organization__isnull=True).order_by("name").values_list("name", "text")
    )
    compiled = cedar.compile_policies((*in_force, ("permits", permits)) if permits else in_force)
    extra = {"at": when, "privacy_approved": True} if privacy else {"at": when}
    outcome = evaluate_request(
        builder,
        action,
        kind="Workflow",
        resource_id=1,
        attributes=attributes,
        workspace=world.ws,
        extra=extra,
        compiled=compiled,
    )
    local_hour = hour + 2  # CEST in June
    business = 9 <= local_hour < 18
    expected = (
        attributes["data_region"] != "EU"
        or (action == "workflow.activate" and attributes["handles_pii"] and not privacy)
        or (action != "workflow.view" and attributes["environment"] == "production" and not business)
    )
    assert outcome.forbidden is expected
