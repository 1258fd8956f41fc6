"""SCIM Groups: create, read, list, replace, patch members (Entra ID's and Okta's forms) and
names, delete; every change in the ledger; members only from the token's own organisation."""

from __future__ import annotations

import pytest

from accounts.models import ScimGroup
from audit.models import AuditEvent
from tests.accounts.scim_world import scim_client, scim_error

pytestmark = pytest.mark.django_db
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def scim(world):
    return scim_client(world)


def _group(scim, name="Engineers", members=()) -> dict:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name,
            "externalId": f"ext-{name}", "members": [{"value": str(user.pk)} for user in members]}  # fmt: skip
    response = scim.post("/Groups", body)
    assert response.status_code == 201, response.content
    return response.json()


def _member_ids(body) -> set[str]:
    return {member["value"] for member in body.get("members", [])}


def test_create_read_and_list(world, scim):
    viewer, builder = world.users["viewer"], world.users["workflow_builder"]
    created = _group(scim, members=[viewer])
    assert _member_ids(created) == {str(viewer.pk)}
    group = ScimGroup.objects.get(pk=created["id"])
    assert (group.organization, group.external_id) == (world.org, "ext-Engineers")
    _group(scim, "Auditors", members=[builder])
    assert scim.get(f"/Groups/{created['id']}").json()["displayName"] == "Engineers"
    found = scim.get("/Groups", filter='displayName eq "engineers"').json()
    assert [resource["id"] for resource in found["Resources"]] == [created["id"]]
    lean = scim.get("/Groups", excludedAttributes="members").json()
    assert lean["totalResults"] == 2
    assert all("members" not in resource for resource in lean["Resources"])
    assert scim.get(f"/Users/{viewer.pk}").json()["groups"] == [
        {"value": created["id"], "display": "Engineers"}
    ]
    event = AuditEvent.objects.get(action="scim.group_created", target_id=created["id"])
    assert event.data["members"] == [viewer.pk]
    assert event.actor_type == "service_account"


def test_names_are_unique_per_organisation(scim):
    _group(scim)
    response = scim.post("/Groups", {"displayName": "ENGINEERS"})
    assert response.status_code == 409
    assert scim_error(response)["scimType"] == "uniqueness"


def test_replace(world, scim):
    viewer, builder = world.users["viewer"], world.users["workflow_builder"]
    created = _group(scim, members=[viewer])
    response = scim.put(
        f"/Groups/{created['id']}", {"displayName": "Builders", "members": [{"value": str(builder.pk)}]}
    )
    assert response.status_code == 200, response.content
    assert _member_ids(response.json()) == {str(builder.pk)}
    event = AuditEvent.objects.get(action="scim.group_replaced")
    assert event.data["before"]["members"] == [viewer.pk]
    assert event.data["after"] == {"display_name": "Builders", "external_id": "", "members": [builder.pk]}


def test_entra_style_member_add_and_remove(world, scim):
    viewer, builder = world.users["viewer"], world.users["workflow_builder"]
    created = _group(scim)
    add = {"schemas": [PATCH], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": str(viewer.pk)}, {"value": str(builder.pk)}]}]}  # fmt: skip
    assert _member_ids(scim.patch(f"/Groups/{created['id']}", add).json()) == {
        str(viewer.pk),
        str(builder.pk),
    }
    remove = {"schemas": [PATCH], "Operations": [
        {"op": "Remove", "path": "members", "value": [{"value": str(viewer.pk)}]}]}  # fmt: skip
    assert _member_ids(scim.patch(f"/Groups/{created['id']}", remove).json()) == {str(builder.pk)}
    events = AuditEvent.objects.filter(action="scim.group_patched").order_by("id")
    assert [(event.data["added"], event.data["removed"]) for event in events] == [
        (sorted([viewer.pk, builder.pk]), []), ([], [viewer.pk])]  # fmt: skip


def test_okta_style_remove_by_filter_and_rename(world, scim):
    viewer = world.users["viewer"]
    created = _group(scim, members=[viewer])
    body = {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": f'members[value eq "{viewer.pk}"]'},
        {"op": "replace", "value": {"id": created["id"], "displayName": "Renamed"}}]}  # fmt: skip
    response = scim.patch(f"/Groups/{created['id']}", body)
    assert response.status_code == 200, response.content
    assert response.json()["displayName"] == "Renamed"
    assert _member_ids(response.json()) == set()


def test_members_of_another_organisation_are_refused(world, scim):
    created = _group(scim)
    add = {"Operations": [{"op": "add", "path": "members", "value": [{"value": str(world.foreign_user.pk)}]}]}
    response = scim.patch(f"/Groups/{created['id']}", add)
    assert response.status_code == 400
    assert scim_error(response)["scimType"] == "invalidValue"
    assert not ScimGroup.objects.get(pk=created["id"]).members.exists()


def test_groups_of_another_organisation_are_404(world, scim):
    foreign = scim_client(world, world.foreign_org)
    theirs = _group(foreign, "Globex team")
    assert scim.get(f"/Groups/{theirs['id']}").status_code == 404
    assert scim.put(f"/Groups/{theirs['id']}", {"displayName": "x"}).status_code == 404
    assert (
        scim.patch(
            f"/Groups/{theirs['id']}", {"Operations": [{"op": "remove", "path": "members"}]}
        ).status_code
        == 404
    )
    assert scim.delete(f"/Groups/{theirs['id']}").status_code == 404
    assert scim.get("/Groups").json()["totalResults"] == 0
    assert ScimGroup.objects.filter(pk=theirs["id"]).exists()


def test_delete(world, scim):
    created = _group(scim, members=[world.users["viewer"]])
    assert scim.delete(f"/Groups/{created['id']}").status_code == 204
    assert not ScimGroup.objects.filter(pk=created["id"]).exists()
    assert scim.get(f"/Groups/{created['id']}").status_code == 404
    event = AuditEvent.objects.get(action="scim.group_deleted")
    assert event.data["display_name"] == "Engineers"
    assert event.data["members"] == [world.users["viewer"].pk]


def test_discovery_documents(scim):
    config = scim.get("/ServiceProviderConfig").json()
    assert config["patch"]["supported"] is True
    assert config["filter"]["supported"] is True
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = scim.get("/ResourceTypes").json()
    assert {item["id"] for item in types["Resources"]} == {"User", "Group"}
    assert scim.get("/ResourceTypes/User").json()["endpoint"] == "/Users"
    schemas = scim.get("/Schemas").json()
    assert "urn:ietf:params:scim:schemas:core:2.0:User" in {item["id"] for item in schemas["Resources"]}
    user_schema = scim.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").json()
    assert "userName" in {attribute["name"] for attribute in user_schema["attributes"]}
    assert scim.get("/Schemas/nope").status_code == 404


@pytest.mark.parametrize("op", ["add", "replace"])
def test_member_operations_without_members_are_refused(world, scim, op):
    created = _group(scim, members=[world.users["viewer"]])
    response = scim.patch(
        f"/Groups/{created['id']}", {"Operations": [{"op": op, "path": "members", "value": None}]}
    )
    assert response.status_code == 400
    assert scim_error(response)["scimType"] == "invalidValue"
    assert ScimGroup.objects.get(pk=created["id"]).members.count() == 1


def test_a_bare_remove_empties_the_group_and_a_deleted_user_leaves_it(world, scim):
    viewer, builder = world.users["viewer"], world.users["workflow_builder"]
    created = _group(scim, members=[viewer, builder])
    assert scim.delete(f"/Users/{viewer.pk}").status_code == 204
    assert _member_ids(scim.get(f"/Groups/{created['id']}").json()) == {str(builder.pk)}
    assert AuditEvent.objects.get(action="scim.user_deleted").data["groups_left"] == [int(created["id"])]
    response = scim.patch(f"/Groups/{created['id']}", {"Operations": [{"op": "remove", "path": "members"}]})
    assert _member_ids(response.json()) == set()
