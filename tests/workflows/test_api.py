"""The workflow API: the journey, field-level errors, conflicts, and flat query counts."""

from __future__ import annotations

import copy

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from tests.conftest import member
from tests.factories import UserFactory
from tests.workflows.conftest import TRIAGE, new_workflow
from workflows.changes.models import Workflow


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_journey(shop):
    world = shop
    builder = client_for(world.users["workflow_builder"])
    created = builder.post(reverse("api-workflow-list"), {
        "workspace": world.ws.pk, "name": "Triage", "slug": "triage", "environment": "staging", "data_region": "EU",
        "handles_pii": False, "definition": TRIAGE, "summary": "v1"}, format="json")  # fmt: skip
    assert created.status_code == 201, created.json()
    change_id = created.json()["id"]
    submitted = builder.post(reverse("api-change-submit", args=[change_id])).json()
    assert [t["code"] for t in submitted["required_tiers"]] == ["compliance", "security"]
    inbox = (
        client_for(world.users["compliance_officer"])
        .get(reverse("api-change-list"), {"inbox": "mine"})
        .json()
    )
    assert change_id in [c["id"] for c in inbox["results"]]  # beside the test world's own waiting change
    for officer, tier in (
        (world.users["compliance_officer"], "compliance"),
        (world.second_officer, "security"),
    ):
        decided = client_for(officer).post(
            reverse("api-change-decide", args=[change_id]),
            {"tier": tier, "approve": True, "comment": "ok"},
            format="json",
        )
        assert decided.status_code == 200, decided.json()
    assert decided.json()["state"] == "applied"
    workflow = builder.get(reverse("api-workflow-detail", args=[decided.json()["workflow"]])).json()
    assert workflow["status"] == "active"
    assert workflow["active_version"]["number"] == 1


def test_bad_definitions_are_field_level_400s(shop):
    world = shop
    builder = client_for(world.users["workflow_builder"])
    bad = copy.deepcopy(TRIAGE)
    bad["steps"][1]["then"] = "nowhere"
    bad["steps"][0]["type"] = "teleport"
    response = builder.post(reverse("api-workflow-list"), {
        "workspace": world.ws.pk, "name": "T", "slug": "t", "environment": "staging", "data_region": "EU",
        "definition": bad, "summary": "v1"}, format="json")  # fmt: skip
    assert response.status_code == 400
    assert any("steps[0].type" in message for message in response.json()["definition"])
    assert not Workflow.objects.filter(slug="t").exists()
    garbage = builder.generic("POST", reverse("api-workflow-list"), "{", content_type="application/json")
    assert garbage.status_code == 400
    wrong_types = builder.post(
        reverse("api-workflow-list"), {"workspace": "x", "definition": 5, "slug": "A B"}, format="json"
    )
    assert wrong_types.status_code == 400
    assert {"workspace", "slug", "name", "summary"} <= set(wrong_types.json())


def test_outdated_base_version_is_a_conflict(shop):
    world = shop
    change = new_workflow(world)
    builder = client_for(world.users["workflow_builder"])
    url = reverse("api-workflow-versions", args=[change.workflow_id])
    payload = {"definition": TRIAGE, "base_version": change.version.pk, "summary": "edit"}
    assert builder.post(url, payload, format="json").status_code == 201
    stale = builder.post(url, payload, format="json")
    assert stale.status_code == 400
    assert "Conflict" in stale.json()["base_version"][0]


def test_list_query_counts_are_flat(shop):
    world = shop
    officer = client_for(world.users["compliance_officer"])
    counts = {"api-workflow-list": [], "api-change-list": []}
    for batch in (2, 10):
        for index in range(batch):
            new_workflow(world, slug=f"w-{batch}-{index}")
        for name in counts:
            with CaptureQueriesContext(connection) as captured:
                assert officer.get(reverse(name)).status_code == 200
            counts[name].append(len(captured))
    assert all(first == second for first, second in counts.values()), counts


def test_large_edits_and_deep_json_are_clear_errors_not_500s(shop):
    """A definition near the size limit edited in full keeps a small ledger event; deeply nested
    JSON is a 400."""
    world = shop
    big = copy.deepcopy(TRIAGE)
    big["steps"] = [{"id": f"s{i}", "type": "transform", "expression": "x" * 3_900,
                     "next": f"s{i + 1}" if i < 5 else None} for i in range(6)]  # fmt: skip
    change = new_workflow(world, definition=big)
    edited = copy.deepcopy(big)
    for step in edited["steps"]:
        step["expression"] = "y" * 3_900
    builder = client_for(world.users["workflow_builder"])
    response = builder.post(
        reverse("api-workflow-versions", args=[change.workflow_id]),
        {"definition": edited, "base_version": change.version.pk, "summary": "all"},
        format="json",
    )
    assert response.status_code == 201, response.content[:300]
    deep = builder.generic(
        "POST", reverse("api-workflow-list"), "[" * 100_000, content_type="application/json"
    )
    assert deep.status_code == 400


def test_bad_policy_text_size_is_refused():
    from governance.access.cedar import validate_policy_text

    assert "limit is" in validate_policy_text(";" * 40_000)[0].message
    assert (
        "At most 50 policies"
        in validate_policy_text('@id("x") forbid(principal, action, resource);\n' * 60)[0].message
    )


def test_refusals_by_role_are_403_and_input_errors_400(shop):
    """GIVEN a submitted change WHEN a viewer decides it, the author decides it, another builder
    submits or withdraws it, or an officer decides a tier the change does not have THEN who may not
    act gets 403 with the reason, and bad input or a decision the change's state rules out 400."""
    world = shop
    created = client_for(world.users["workflow_builder"]).post(reverse("api-workflow-list"), {
        "workspace": world.ws.pk, "name": "Triage", "slug": "triage", "environment": "staging", "data_region": "EU",
        "definition": TRIAGE, "summary": "v1"}, format="json")  # fmt: skip
    change_id = created.json()["id"]
    decide = reverse("api-change-decide", args=[change_id])
    vote = {"tier": "compliance", "approve": True, "comment": "ok"}
    assert (
        client_for(world.users["workflow_builder"])
        .post(reverse("api-change-submit", args=[change_id]))
        .status_code
        == 200
    )

    viewer = client_for(world.users["viewer"]).post(decide, vote, format="json")
    assert viewer.status_code == 403
    assert "cannot review this change" in viewer.json()["detail"]
    author = client_for(world.users["workflow_builder"]).post(decide, vote, format="json")
    assert author.status_code == 403
    assert "someone else must review" in author.json()["detail"]
    other_builder = UserFactory(organization=world.org, region="EU")
    member(other_builder, "workflow_builder", world.ws)
    for action in ("api-change-withdraw", "api-change-submit"):
        refused = client_for(other_builder).post(reverse(action, args=[change_id]))
        assert refused.status_code == 403, action
        assert "Only the author" in refused.json()["detail"]

    officer = client_for(world.users["compliance_officer"])
    unknown_tier = officer.post(decide, {**vote, "tier": "astrology"}, format="json")
    assert unknown_tier.status_code == 400
    assert "needs no 'astrology' approval" in unknown_tier.json()["tier"][0]
    assert officer.post(decide, {**vote, "comment": " "}, format="json").status_code == 400
    assert officer.post(decide, vote, format="json").status_code == 200
    again = client_for(world.second_officer).post(decide, vote, format="json")
    assert again.status_code == 400
    assert "given already" in again.json()["tier"][0]
