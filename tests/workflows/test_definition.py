"""Workflow definitions: schema, references, cycles, size — errors at the step and field."""

from __future__ import annotations

import copy

import pytest

from tests.workflows.conftest import AI_STEP, TRIAGE
from workflows.changes.definition import diff_definitions, validate_definition

INTEGRATIONS = {"crm": object(), "llm": object()}


def errors(definition):
    return {(e.path, e.message) for e in validate_definition(definition, integrations=INTEGRATIONS)}


def with_steps(*changes):
    definition = copy.deepcopy(TRIAGE)
    for change in changes:
        change(definition)
    return definition


def test_a_good_definition_passes():
    assert errors(TRIAGE) == set()
    assert (
        errors(
            with_steps(lambda d: d["steps"].append(AI_STEP), lambda d: d["steps"][3].update(next="classify"))
        )
        == set()
    )


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda d: d["steps"][0].update(type="teleport"), "steps[0].type", "Unknown step type 'teleport'"),
        (lambda d: d["steps"][1].update(then="nowhere"), "steps[1].then", "No step has the id 'nowhere'"),
        (
            lambda d: d["steps"][0].update(integration="erp"),
            "steps[0].integration",
            "not an integration of this workspace",
        ),
        (lambda d: d["steps"][0].pop("method"), "steps[0]", "'method' is a required property"),
        (lambda d: d["steps"][3].update(colour="red"), "steps[3]", "Unknown field(s)"),
        (lambda d: d["steps"][2].update(id="fetch"), "steps[2].id", "used twice"),
        (lambda d: d.update(trigger={"type": "schedule"}), "trigger.cron", "needs a cron expression"),
        (
            lambda d: d.update(trigger={"type": "schedule", "cron": "61 25 * * *"}),
            "trigger.cron",
            "bad minute",
        ),
        (
            lambda d: d.update(trigger={"type": "schedule", "cron": "every tuesday"}),
            "trigger.cron",
            "five fields",
        ),
        (lambda d: d.update(trigger={"type": "webhook"}), "trigger.path", "needs a path"),
        (lambda d: d.update(trigger={"type": "hourly"}), "trigger.type", "Unknown trigger type"),
        (lambda d: d.update(trigger={"kind": "manual"}), "trigger", "must be manual, schedule"),
        (
            lambda d: d["steps"][3].update(next="fetch"),
            "steps[0]",
            "The steps loop: fetch → route → tag → fetch.",
        ),
    ],
)
def test_bad_definitions_name_the_step_and_field(change, path, message):
    found = errors(with_steps(change))
    assert any(p == path and message in m for p, m in found), found


def test_oversized_and_non_json_definitions():
    huge = with_steps(lambda d: d["steps"][3].update(expression="x" * 3000))
    huge["steps"] = huge["steps"] + [dict(huge["steps"][3], id=f"t{i}") for i in range(30)]
    assert any("limit is 65,536" in m for _, m in errors(huge))
    assert any(
        "NaN and Infinity are not JSON numbers" in m
        for _, m in errors({"trigger": {"type": "manual"}, "steps": [float("nan")]})
    )
    assert errors("not a dict") != set()
    assert errors({"trigger": {"type": "manual"}, "steps": []})


def test_diff_reports_steps_added_changed_removed():
    after = with_steps(
        lambda d: d["steps"].append(AI_STEP),
        lambda d: d["steps"][0].update(path="/tickets/all"),
        lambda d: d["steps"].pop(2),
        lambda d: d["steps"][1].update(then="tag"),
    )
    diff = diff_definitions(TRIAGE, after)
    kinds = {(c["step"], c["kind"]) for c in diff["steps"]}
    assert kinds == {("fetch", "changed"), ("route", "changed"), ("page", "removed"), ("classify", "added")}
    fetch = next(c for c in diff["steps"] if c["step"] == "fetch")
    assert fetch["fields"] == ["path"]
    assert diff["trigger"] is None
    assert diff_definitions(None, TRIAGE)["new_workflow"] is True
