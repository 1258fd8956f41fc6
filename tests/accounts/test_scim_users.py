"""SCIM Users: create, read, list with filter and paging, replace, patch (Okta's and Entra ID's
forms), delete; tenancy; and the promise: a deactivation cuts a signed-in person off at once."""

from __future__ import annotations

import pytest
from django.test import Client
from knox.models import AuthToken

from accounts.models import User, UserSession
from audit.models import AuditEvent
from governance.tenancy.models import Membership
from tests.accounts.scim_world import new_user, scim_client, scim_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def scim(world):
    return scim_client(world)


def _create(scim, name="ada", **extra) -> dict:
    response = scim.post("/Users", new_user(name, **extra))
    assert response.status_code == 201, response.content
    return response.json()


def test_create_makes_an_account_without_role_or_password(world, scim):
    """GIVEN a SCIM token of Acme WHEN the IdP creates a user THEN the account exists in Acme, with
    no role and no usable password, and the ledger names the token as the actor."""
    body = _create(scim)
    assert body["userName"] == "ada@acme.test"
    assert body["active"] is True
    assert body["externalId"] == "ext-ada"
    assert body["displayName"] == "Ada Lovelace"
    user = User.objects.get(email="ada@acme.test")
    assert user.organization == world.org
    assert str(user.pk) == body["id"]
    assert not Membership.objects.filter(user=user).exists()
    assert not user.has_usable_password()
    event = AuditEvent.objects.get(action="scim.user_created")
    assert event.actor_type == "service_account"
    assert event.actor_id is None
    assert event.actor_label.startswith("SCIM token Test IdP (gpscim_")
    assert event.organization_id == world.org.pk
    assert AuditEvent.objects.filter(action="user.created", target_id=str(user.pk)).exists()


def test_responses_are_scim_json_with_a_location(scim):
    response = scim.post("/Users", new_user("bob"))
    assert response["Content-Type"] == "application/scim+json"
    assert response["Location"].endswith(f"/scim/v2/Users/{response.json()['id']}")
    assert not response.cookies  # no session, no CSRF cookie


def test_a_second_account_with_the_same_user_name_is_a_conflict(scim):
    _create(scim)
    response = scim.post("/Users", new_user("ada"))
    assert response.status_code == 409
    assert scim_error(response)["scimType"] == "uniqueness"


def test_get_and_list_with_filter_and_paging(world, scim):
    created = [_create(scim, name) for name in ("ann", "ben", "cid")]
    assert scim.get(f"/Users/{created[1]['id']}").json()["userName"] == "ben@acme.test"
    found = scim.get("/Users", filter='userName eq "BEN@acme.test"').json()
    assert found["totalResults"] == 1
    assert found["Resources"][0]["id"] == created[1]["id"]
    assert scim.get("/Users", filter='userName eq "nobody@acme.test"').json()["totalResults"] == 0
    everyone = User.objects.filter(organization=world.org).count()
    page = scim.get("/Users", startIndex=2, count=2).json()
    assert page["totalResults"] == everyone
    assert page["startIndex"] == 2
    assert page["itemsPerPage"] == 2
    assert len(page["Resources"]) == 2
    assert scim.get("/Users", count=0).json()["Resources"] == []


def test_replace_changes_the_profile(scim):
    body = _create(scim)
    document = new_user("ada", displayName="Countess Lovelace", externalId="ext-2")
    document["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = {"department": "Analytics"}
    response = scim.put(f"/Users/{body['id']}", document)
    assert response.status_code == 200, response.content
    user = User.objects.get(pk=body["id"])
    assert (user.display_name, user.scim_external_id, user.department) == (
        "Countess Lovelace",
        "ext-2",
        "Analytics",
    )
    assert AuditEvent.objects.filter(action="scim.user_replaced").count() == 1


def _signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    assert browser.get("/").status_code == 200
    return browser


OKTA_DEACTIVATE = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "value": {"active": False}}],
}
ENTRA_DEACTIVATE = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
}


@pytest.mark.parametrize("patch", [OKTA_DEACTIVATE, ENTRA_DEACTIVATE], ids=["okta", "entra"])
def test_patch_active_false_cuts_a_signed_in_person_off_on_their_next_request(world, scim, patch):
    """GIVEN a person signed in with a browser and holding an API token WHEN the IdP PATCHes
    active=false (Okta's value-object form or Entra ID's path form) THEN their next page request
    is sent to the login page, an API call with their session gets 401, the token is gone."""
    person = world.users["viewer"]
    browser = _signed_in(person)
    api = _signed_in(person)
    AuthToken.objects.create(user=person)
    response = scim.patch(f"/Users/{person.pk}", patch)
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    next_page = browser.get("/")
    assert next_page.status_code == 302
    assert next_page["Location"].startswith("/accounts/login/")
    assert api.get("/api/v1/workspaces/").status_code == 401
    assert not AuthToken.objects.filter(user=person).exists()
    assert not UserSession.objects.filter(user=person, ended_at__isnull=True).exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"scim.user_patched", "scim.user_deactivated", "user.deactivated", "session.forced_end"} <= actions


def test_okta_and_entra_profile_patches(world, scim):
    body = _create(scim)
    okta = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"id": body["id"], "displayName": "Ada L."}}]}  # fmt: skip
    assert scim.patch(f"/Users/{body['id']}", okta).status_code == 200
    entra = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Replace", "path": "name.givenName", "value": "Augusta"},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "ada@acme.test"},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
         "value": "Maths"},
        {"op": "Replace", "path": "externalId", "value": "entra-1"}]}  # fmt: skip
    response = scim.patch(f"/Users/{body['id']}", entra)
    assert response.status_code == 200, response.content
    user = User.objects.get(pk=body["id"])
    assert (user.display_name, user.department, user.scim_external_id) == ("Augusta", "Maths", "entra-1")


def test_patch_can_reactivate(world, scim):
    person = world.users["viewer"]
    scim.patch(f"/Users/{person.pk}", OKTA_DEACTIVATE)
    reactivate = {"Operations": [{"op": "replace", "path": "active", "value": True}]}
    assert scim.patch(f"/Users/{person.pk}", reactivate).json()["active"] is True
    person.refresh_from_db()
    assert person.is_active


def test_delete_deactivates_and_marks_deprovisioned_keeping_the_row(world, scim):
    """GIVEN a signed-in person WHEN the IdP DELETEs them THEN the row stays (the ledger names it),
    deactivated and marked deprovisioned; they are cut off, and SCIM answers 404 from now on."""
    person = world.users["viewer"]
    browser = _signed_in(person)
    response = scim.delete(f"/Users/{person.pk}")
    assert response.status_code == 204
    person.refresh_from_db()
    assert not person.is_active
    assert person.deprovisioned_at is not None
    assert browser.get("/").status_code == 302
    assert scim.get(f"/Users/{person.pk}").status_code == 404
    assert scim.delete(f"/Users/{person.pk}").status_code == 404
    event = AuditEvent.objects.get(action="scim.user_deleted")
    assert event.data["deactivated"] is True
    assert event.data["groups_left"] == []


def test_a_token_sees_and_changes_only_its_own_organisation(world, scim):
    """GIVEN Acme's token WHEN it reads, replaces, patches or deletes a Globex user THEN 404, and
    lists never show Globex users; nothing changes."""
    foreign = world.foreign_user
    assert scim.get(f"/Users/{foreign.pk}").status_code == 404
    assert scim.put(f"/Users/{foreign.pk}", new_user("x")).status_code == 404
    assert scim.patch(f"/Users/{foreign.pk}", OKTA_DEACTIVATE).status_code == 404
    assert scim.delete(f"/Users/{foreign.pk}").status_code == 404
    listed = scim.get("/Users", count=200).json()
    assert foreign.email not in {resource["userName"] for resource in listed["Resources"]}
    assert scim.get("/Users", filter=f'userName eq "{foreign.email}"').json()["totalResults"] == 0
    foreign.refresh_from_db()
    assert foreign.is_active


def test_a_deprovisioned_account_is_not_revived_by_a_new_post(world, scim):
    """GIVEN a user the IdP deleted WHEN it POSTs the same userName again THEN 409: reviving the old
    account would bring back its roles; a platform administrator reactivates it by hand, after
    which SCIM sees it again."""
    from accounts.services import user_set_active

    person = world.users["viewer"]
    scim.delete(f"/Users/{person.pk}")
    response = scim.post("/Users", new_user("viewer"))
    assert response.status_code == 409
    assert "deprovisioned" in scim_error(response)["detail"]
    user_set_active(actor=world.users["platform_admin"], user=person, active=True)
    person.refresh_from_db()
    assert person.deprovisioned_at is None
    assert scim.get(f"/Users/{person.pk}").json()["active"] is True


def test_bad_values_are_field_errors_and_change_nothing(world, scim):
    person = world.users["viewer"]
    for patch in (
        {"Operations": [{"op": "replace", "path": "active", "value": "maybe"}]},
        {"Operations": [{"op": "replace", "path": "userName", "value": "not-an-email"}]},
        {"Operations": [{"op": "replace", "path": "favouriteColour", "value": "blue"}]},
        {"Operations": [{"op": "remove", "path": "active"}]},
        {"Operations": [{"op": "replace", "path": "displayName", "value": 42}]},
    ):
        response = scim.patch(f"/Users/{person.pk}", patch)
        assert response.status_code == 400, patch
        assert scim_error(response)["scimType"] in ("invalidValue", "invalidPath", "mutability")
    person.refresh_from_db()
    assert person.is_active
    assert not AuditEvent.objects.filter(action__startswith="scim.user").exists()
    response = scim.get("/Users", filter='title sw "x"')
    assert response.status_code == 400
    assert scim_error(response)["scimType"] == "invalidFilter"


def test_a_replacement_without_active_leaves_a_deactivated_person_deactivated(world, scim):
    person = world.users["viewer"]
    scim.patch(f"/Users/{person.pk}", OKTA_DEACTIVATE)
    document = {"userName": person.email, "displayName": "Still out"}
    response = scim.put(f"/Users/{person.pk}", document)
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    person.refresh_from_db()
    assert (person.is_active, person.display_name) == (False, "Still out")
