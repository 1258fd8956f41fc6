"""Malformed SCIM input, fuzzed: whatever the body, filter or paging, the answer is never a 500
and every refusal is a SCIM error document (status, scimType, detail)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.accounts.scim_world import ScimClient, scim_error, scim_token_for

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
ATTRIBUTES = ["userName", "active", "name", "displayName", "externalId", "emails", "schemas", "members", "id",
              "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "title", "meta"]  # fmt: skip
PATHS = ["active", "userName", "displayName", "name.givenName", "externalId", "members", 'members[value eq "1"]',
         'emails[type eq "work"].value', "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
         "nonsense", "", "name"]  # fmt: skip
documents = (
    st.dictionaries(st.sampled_from(ATTRIBUTES) | st.text(max_size=10), json_values, max_size=6) | json_values
)
operations = st.fixed_dictionaries(
    {},
    optional={
        "op": st.sampled_from(["add", "replace", "remove", "Replace", "Add", "move"]) | json_values,
        "path": st.sampled_from(PATHS) | json_values,
        "value": json_values | st.dictionaries(st.sampled_from(ATTRIBUTES), json_values, max_size=3),
    },
)
patches = (
    st.fixed_dictionaries(
        {"Operations": st.lists(operations, max_size=4) | json_values},
        optional={"schemas": st.just(["urn:ietf:params:scim:api:messages:2.0:PatchOp"]) | json_values},
    )
    | json_values
)


@pytest.fixture
def scim(world):
    return ScimClient(scim_token_for(world))


def _never_a_server_error(response) -> None:
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        body = scim_error(response)
        assert body["detail"]


@FUZZ
@given(body=documents, target=st.sampled_from(["/Users", "/Groups"]))
def test_create_with_any_document(scim, body, target):
    _never_a_server_error(scim.post(target, body))


@FUZZ
@given(body=documents, target=st.sampled_from(["users", "groups"]))
def test_replace_with_any_document(world, scim, body, target):
    if target == "users":
        _never_a_server_error(scim.put(f"/Users/{world.users['viewer'].pk}", body))
    else:
        _never_a_server_error(scim.put(f"/Groups/{_fuzz_group(scim)}", body))


def _fuzz_group(scim) -> str:
    created = scim.post("/Groups", {"displayName": "Fuzzers"})
    if created.status_code == 201:
        return created.json()["id"]
    return scim.get("/Groups", filter='displayName eq "Fuzzers"').json()["Resources"][0]["id"]


@FUZZ
@given(body=patches, target=st.sampled_from(["users", "groups"]))
def test_patch_with_any_operations(world, scim, body, target):
    if target == "users":
        path = f"/Users/{world.users['workflow_operator'].pk}"
    else:
        path = f"/Groups/{_fuzz_group(scim)}"
    _never_a_server_error(scim.patch(path, body))


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_bodies_that_are_not_json(scim, raw):
    _never_a_server_error(scim.post("/Users", raw=raw))


@FUZZ
@given(
    text=st.text(max_size=80) | st.sampled_from(['userName eq "a@b.c"', 'userName sw "a"', 'title eq "x"',
                                                  'userName eq "unterminated', "userName eq 42", 'id eq "1"']),
    start=st.text(max_size=6) | st.integers().map(str),
    count=st.text(max_size=6) | st.integers().map(str),
    target=st.sampled_from(["/Users", "/Groups"]),
)  # fmt: skip
def test_any_filter_and_paging(scim, text, start, count, target):
    response = scim.get(target, filter=text, startIndex=start, count=count)
    _never_a_server_error(response)
    if response.status_code == 200:
        body = response.json()
        assert body["itemsPerPage"] == len(body["Resources"]) <= 200


@pytest.mark.parametrize("user_id", ["abc", "-1", "99999999999999999999999", "1.0", "%00"])
def test_odd_ids_are_404(scim, user_id):
    response = scim.get(f"/Users/{user_id}")
    assert response.status_code == 404
    scim_error(response)


def test_unsupported_methods_and_media_types_get_scim_errors(world, scim):
    _never_a_server_error(scim.post(f"/Users/{world.users['viewer'].pk}", {}))
    assert scim.post(f"/Users/{world.users['viewer'].pk}", {}).status_code == 405
    response = scim.client.post("/scim/v2/Users", "userName=x", content_type="application/x-www-form-urlencoded",
                                **scim.headers)  # fmt: skip
    assert response.status_code == 415
    scim_error(response)
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    _never_a_server_error(scim.post("/Users", raw=deep))
    _never_a_server_error(scim.post("/Users", raw=json.dumps({"userName": "a@b.c" + "x" * 300}).encode()))
    too_big = scim.post("/Users", raw=b" " * (3 * 1024 * 1024) + b"{}")
    assert too_big.status_code == 413
    assert scim_error(too_big)["scimType"] == "tooLarge"
