"""A picture of every workflow: the definition drawn by Graphviz, a change's steps marked."""

from __future__ import annotations

import base64
import re
import shutil

import pytest
from django.urls import reverse

from tests.tools import unavailable
from tests.workflows.conftest import TRIAGE, new_workflow
from workflows.changes import services
from workflows.changes.graph import definition_dot, graph_image


@pytest.fixture
def needs_dot():
    if shutil.which("dot") is None:
        unavailable("Graphviz's dot is not installed (Debian: apt-get install graphviz)")


def _svg(body: str) -> str:
    match = re.search(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"', body)
    assert match, "no graph on the page"
    return base64.b64decode(match.group(1)).decode()


@pytest.mark.usefixtures("needs_dot")
def test_the_change_page_draws_the_version_with_its_changes_marked(shop, client):
    world = shop
    first = new_workflow(world)
    edited = {**TRIAGE, "steps": [step for step in TRIAGE["steps"] if step["id"] != "tag"]}
    edited["steps"] = [
        {**step, "else": "page"} if step["id"] == "route" else step for step in edited["steps"]
    ]
    workflow = first.workflow
    workflow.active_version = first.version  # as if approved and applied: the diff is against it
    workflow.save(update_fields=["active_version"])
    change = services.workflow_version_create(
        actor=world.users["workflow_builder"], workflow=workflow, definition=edited,
        base_version=first.version, summary="drop tagging",
    )  # fmt: skip
    client.force_login(world.users["workflow_builder"])
    body = client.get(reverse("change-detail", args=[change.pk])).content.decode()
    svg = _svg(body)
    for text in (
        "fetch",
        "route",
        "page",
        "GET crm/tickets/new",
        "if ticket.priority == &#39;high&#39;",
        "[removed]",
    ):
        assert text in svg, text
    assert "stroke-dasharray" in svg  # the removed step is drawn dashed
    # Every step is its own node, joined as the definition says: trigger, fetch, route, page; the
    # branch goes to page both ways; the removed step stands alone.
    nodes = re.findall(r'<g id="node\d+" class="node">\s*<title>([^<]+)</title>', svg)
    assert nodes == ["trigger", "s0", "s1", "s2", "r0"]
    edges = re.findall(r'<g id="edge\d+" class="edge">\s*<title>([^<]+)</title>', svg)
    assert sorted(edge.replace("&#45;&gt;", "->") for edge in edges) == [
        "s0->s1",
        "s1->s2",
        "s1->s2",
        "trigger->s0",
    ]
    assert "1 removed" in body


@pytest.mark.usefixtures("needs_dot")
def test_hostile_labels_are_text_in_the_picture_never_markup(shop):
    hostile = {
        "trigger": {"type": "webhook", "path": '/x"];evil[label="\\N<script>'},
        "steps": [{"id": "a", "type": "transform", "expression": "x", "next": None,
                   "model": "</text><script>alert(1)</script>"}],
    }  # fmt: skip
    image = graph_image(hostile)
    svg = base64.b64decode(image["src"].split(",", 1)[1]).decode()
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "evil" in svg  # drawn as text of the trigger's label, not as DOT


def test_the_dot_source_quotes_every_label():
    source = definition_dot({"trigger": {"type": "manual"}, "steps": [{"id": 'x"y', "type": "branch",
                             "condition": 'a "b" \\l', "then": 'x"y', "else": None}]})  # fmt: skip
    assert 'x\\"y' in source  # the id is in a quoted label, never a node name
    assert "\\\\l" in source  # a backslash is the builder's text, not a DOT escape


def test_without_dot_the_page_says_so_and_shows_the_json(shop, client, monkeypatch):
    monkeypatch.setattr("workflows.changes.graph.shutil.which", lambda name: None)
    monkeypatch.setattr("workflows.changes.graph._drawn", {})
    change = new_workflow(shop)
    client.force_login(shop.users["workflow_builder"])
    body = client.get(reverse("change-detail", args=[change.pk])).content.decode()
    assert "apt-get install graphviz" in body
    assert "&quot;GET&quot;" in body
