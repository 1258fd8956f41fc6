"""Authorization matrix of the API: every endpoint × every role × own/sibling/foreign workspace.

The table is the specification; ``test_matrix_covers_every_api_endpoint`` fails when a route
is added without rows. Statuses are HTTP codes; 404 means "not visible to you" (exactly as if it
did not exist), 403 "you may see it but not do this", 401 "sign in first".
"""

from __future__ import annotations

import pytest
from django.urls import get_resolver, reverse
from rest_framework.test import APIClient

from governance.tenancy.models import Membership
from tests.conftest import ROLE_ORDER, build_world

COLUMNS = ("anonymous", *ROLE_ORDER)


def _target(world, scope):
    return {
        "own": (world.ws, world.memberships["viewer"]),
        "sibling": (world.sibling, world.sibling_membership),
        "foreign": (world.foreign, world.foreign_membership),
    }[scope]


def _request(client, world, endpoint: str, scope: str | None):
    if endpoint == "workspace-list":
        return client.get(reverse("workspace-list"))
    if endpoint == "membership-list":
        return client.get(reverse("membership-list"))
    if endpoint == "api-schema":
        return client.get(reverse("api-schema"))
    if endpoint == "api-docs":
        return client.get(reverse("api-docs"))
    workspace, membership = _target(world, scope)
    if endpoint == "workspace-detail":
        return client.get(reverse("workspace-detail", args=[workspace.pk]))
    if endpoint == "membership-create":
        newcomer = world.newcomers[workspace.organization_id]
        return client.post(
            reverse("membership-list"),
            {"user": newcomer.pk, "workspace": workspace.pk, "role": "viewer"},
            format="json",
        )
    url = reverse("membership-detail", args=[membership.pk])
    if endpoint == "membership-detail":
        return client.get(url)
    if endpoint == "membership-update":
        return client.patch(url, {"role": "auditor"}, format="json")
    if endpoint == "membership-delete":
        return client.delete(url)
    raise AssertionError(endpoint)


# fmt: off
# columns:                 anon p.admin owner builder operator viewer officer auditor
MATRIX = {
    "api-schema":                (401, 200, 200, 200, 200, 200, 200, 200),
    "api-docs":                  (401, 200, 200, 200, 200, 200, 200, 200),
    "workspace-list":            (401, 200, 200, 200, 200, 200, 200, 200),
    "workspace-detail/own":      (401, 200, 200, 200, 200, 200, 200, 200),
    "workspace-detail/sibling":  (401, 200, 404, 404, 404, 404, 404, 404),
    "workspace-detail/foreign":  (401, 404, 404, 404, 404, 404, 404, 404),
    "membership-list":           (401, 200, 200, 403, 403, 403, 200, 200),
    "membership-detail/own":     (401, 200, 200, 403, 403, 403, 200, 200),
    "membership-detail/sibling": (401, 200, 404, 403, 403, 403, 404, 404),
    "membership-detail/foreign": (401, 404, 404, 403, 403, 403, 404, 404),
    "membership-create/own":     (401, 201, 201, 403, 403, 403, 403, 403),
    "membership-create/sibling": (401, 201, 400, 403, 403, 403, 403, 403),
    "membership-create/foreign": (401, 400, 400, 403, 403, 403, 403, 403),
    "membership-update/own":     (401, 200, 200, 403, 403, 403, 403, 403),
    "membership-update/sibling": (401, 200, 404, 403, 403, 403, 403, 403),
    "membership-update/foreign": (401, 404, 404, 403, 403, 403, 403, 403),
    "membership-delete/own":     (401, 204, 204, 403, 403, 403, 403, 403),
    "membership-delete/sibling": (401, 204, 404, 403, 403, 403, 403, 403),
    "membership-delete/foreign": (401, 404, 404, 403, 403, 403, 403, 403),
}
# fmt: on

# Which route and method each row exercises.
ROUTES = {
    "api-schema": ("api-schema", "GET"),
    "api-docs": ("api-docs", "GET"),
    "workspace-list": ("workspace-list", "GET"),
    "workspace-detail": ("workspace-detail", "GET"),
    "membership-list": ("membership-list", "GET"),
    "membership-create": ("membership-list", "POST"),
    "membership-detail": ("membership-detail", "GET"),
    "membership-update": ("membership-detail", "PATCH"),
    "membership-delete": ("membership-detail", "DELETE"),
}


def _api_routes() -> set[tuple[str, str]]:
    """Every (route name, method) the URL map serves under /api/, HEAD and OPTIONS aside."""
    found = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, route)
                continue
            if not route.startswith("api/") or pattern.name is None or "format" in route:
                continue
            callback = pattern.callback
            actions = getattr(callback, "actions", None)
            if actions:
                methods = {method.upper() for method in actions}
            else:
                view_class = callback.view_class
                methods = {m.upper() for m in view_class.http_method_names if hasattr(view_class, m)}
            found.update((pattern.name, method) for method in methods - {"HEAD", "OPTIONS"})

    walk(get_resolver().url_patterns)
    return found


def test_matrix_covers_every_api_endpoint():
    covered = {ROUTES[key.partition("/")[0]] for key in MATRIX}
    assert covered == _api_routes()
    assert all(len(row) == len(COLUMNS) for row in MATRIX.values())


def _cells():
    for key, expected in MATRIX.items():
        endpoint, _, scope = key.partition("/")
        for column, status in zip(COLUMNS, expected, strict=True):
            yield pytest.param(endpoint, scope or None, column, status, id=f"{key}:{column}")


@pytest.mark.parametrize(("endpoint", "scope", "column", "expected"), list(_cells()))
def test_api_matrix(db, endpoint, scope, column, expected):
    world = build_world()
    client = APIClient()
    if column != "anonymous":
        client.force_authenticate(world.users[column])
    before = Membership.objects.count()
    response = _request(client, world, endpoint, scope)
    assert response.status_code == expected, getattr(response, "data", None)
    if expected >= 400:
        assert Membership.objects.count() == before  # a refusal writes nothing


@pytest.mark.parametrize("column", ROLE_ORDER)
def test_lists_never_show_another_organisation(db, column):
    """Whatever the role, list endpoints hold no row of organisation B (0 unexpected allows)."""
    world = build_world()
    client = APIClient()
    client.force_authenticate(world.users[column])
    workspaces = client.get(reverse("workspace-list")).json()["results"]
    assert world.foreign.pk not in {row["id"] for row in workspaces}
    assert world.ws.pk in {row["id"] for row in workspaces}
    response = client.get(reverse("membership-list"))
    if response.status_code == 200:
        rows = {row["id"] for row in response.json()["results"]}
        assert world.foreign_membership.pk not in rows
        assert world.memberships["viewer"].pk in rows


def test_openapi_schema_is_valid_and_complete(tmp_path):
    """The published schema validates and drf-spectacular has nothing to warn about."""
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/v1/memberships/" in text
    assert "MembershipCreateInput" in text
