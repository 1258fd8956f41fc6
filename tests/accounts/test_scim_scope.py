"""What one organisation's SCIM token may touch: its own organisation's accounts only (another's
user names are unknown to it and cannot be taken), addresses in its own domains only, never an
account holding a control-panel role, and no reactivation of an account an administrator
deactivated. Every refusal is a SCIM 403 recorded as ``scim.change_refused``."""

from __future__ import annotations

import pytest

from accounts.models import DeactivatedBy, IdentityProvider, ProviderKind, User
from accounts.services import user_set_active
from audit.models import AuditEvent
from tests.accounts.scim_world import new_user, scim_client, scim_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def scim(world):
    return scim_client(world)


@pytest.fixture
def globex_scim(world):
    return scim_client(world, world.foreign_org)


def _refusals(reason: str | None = None):
    events = AuditEvent.objects.filter(action="scim.change_refused")
    return events.filter(data__reason=reason) if reason else events


def _user(address: str, **extra) -> dict:
    return {**new_user("x", **extra), "userName": address}


def _globex_lists(world, *domains: str) -> IdentityProvider:
    """Globex's identity provider, listing ``domains``: what makes them Globex's."""
    return IdentityProvider.objects.create(
        organization=world.foreign_org, kind=ProviderKind.OIDC, name="Globex", slug="globex-idp",
        oidc_issuer="https://idp.globex.example/", oidc_client_id="c", allowed_domains=list(domains),
    )  # fmt: skip


def test_another_organisations_user_name_is_unknown_to_read_and_filter(world, scim):
    """GIVEN a Globex account WHEN Acme's token filters by its userName or externalId, or reads it by
    id THEN it sees nothing: an empty list and 404, exactly as for a name nobody has."""
    foreign = world.foreign_user
    foreign.scim_external_id = "globex-ext-1"
    foreign.save(update_fields=["scim_external_id"])
    for query in (f'userName eq "{foreign.email}"', 'externalId eq "globex-ext-1"', f'id eq "{foreign.pk}"'):
        assert scim.get("/Users", filter=query).json()["totalResults"] == 0, query
    assert scim.get(f"/Users/{foreign.pk}").json() == scim.get("/Users/999999999").json()


def test_creating_another_organisations_user_name_answers_like_any_name_in_its_domain(world, scim):
    """GIVEN Globex's account owner@globex.test, and Globex's provider listing globex.test WHEN
    Acme's token creates that userName, and a name in globex.test that nobody has THEN both get
    the very same 403 (no 409 that would confirm the account), nothing is created, and both
    refusals are recorded."""
    _globex_lists(world, "globex.test")
    taken = scim.post("/Users", _user(world.foreign_user.email))
    free = scim.post("/Users", _user("nobody-yet@globex.test"))
    assert taken.status_code == free.status_code == 403
    assert scim_error(taken) == scim_error(free)
    assert "exists" not in scim_error(taken)["detail"]
    assert not User.objects.filter(email="nobody-yet@globex.test").exists()
    assert User.objects.get(email=world.foreign_user.email).organization == world.foreign_org
    refusals = _refusals("domain not held")
    assert refusals.count() == 2
    assert {event.data["domain"] for event in refusals} == {"globex.test"}
    assert {event.organization_id for event in refusals} == {world.org.pk}


def test_an_organisation_cannot_squat_addresses_in_another_organisations_domain(world, scim, globex_scim):
    """GIVEN Globex's provider lists globex.test WHEN Acme's token creates new@globex.test THEN
    403; and Globex's own token can still create new@globex.test afterwards."""
    _globex_lists(world, "globex.test")
    assert scim.post("/Users", _user("new@globex.test")).status_code == 403
    response = globex_scim.post("/Users", _user("new@globex.test"))
    assert response.status_code == 201, response.content
    assert User.objects.get(email="new@globex.test").organization == world.foreign_org


def test_a_domain_another_organisations_identity_provider_lists_is_refused(world, scim):
    """GIVEN Globex's identity provider lists globex.example (no account uses it yet) WHEN Acme's
    token creates an address there THEN 403."""
    _globex_lists(world, "globex.example")
    assert scim.post("/Users", _user("first@globex.example")).status_code == 403
    assert not User.objects.filter(email="first@globex.example").exists()


def test_an_organisation_with_listed_domains_provisions_only_in_them(world, scim):
    """GIVEN Acme's identity provider lists acme.test WHEN its token creates an address elsewhere
    THEN 403; in acme.test THEN 201."""
    IdentityProvider.objects.create(
        organization=world.org, kind=ProviderKind.OIDC, name="Acme", slug="acme-idp",
        oidc_issuer="https://idp.acme.example/", oidc_client_id="c", allowed_domains=["acme.test"],
    )  # fmt: skip
    assert scim.post("/Users", _user("ada@unlisted.example")).status_code == 403
    assert scim.post("/Users", _user("ada@acme.test")).status_code == 201


def test_renaming_into_another_organisations_domain_is_refused_not_a_conflict(world, scim):
    """GIVEN an Acme account and Globex's provider listing globex.test WHEN the token PATCHes or
    PUTs its userName to Globex's existing account, or to a free name in globex.test THEN 403
    each time (never 409), nothing changes."""
    _globex_lists(world, "globex.test")
    person = world.users["viewer"]
    rename = {"Operations": [{"op": "replace", "path": "userName", "value": world.foreign_user.email}]}
    answers = [
        scim.patch(f"/Users/{person.pk}", rename),
        scim.put(f"/Users/{person.pk}", _user(world.foreign_user.email)),
        scim.put(f"/Users/{person.pk}", _user("free@globex.test")),
    ]
    assert [answer.status_code for answer in answers] == [403, 403, 403]
    assert len({scim_error(answer)["detail"] for answer in answers}) == 1
    person.refresh_from_db()
    assert person.email == "viewer@acme.test"


def test_accounts_alone_do_not_make_a_domain_anyones(world, scim, globex_scim):
    """GIVEN accounts of both organisations in mail.example (a public mail domain) and in
    globex.test, and no identity provider listing either WHEN either token creates a new address
    there THEN 201: only a provider's allowed domains make a domain an organisation's."""
    from tests.factories import UserFactory

    UserFactory(organization=world.org, email="ann@mail.example")
    UserFactory(organization=world.foreign_org, email="bob@mail.example")
    assert scim.post("/Users", _user("carol@mail.example")).status_code == 201
    assert globex_scim.post("/Users", _user("dave@mail.example")).status_code == 201
    assert scim.post("/Users", _user("new@globex.test")).status_code == 201
    assert User.objects.get(email="new@globex.test").organization == world.org
    assert not _refusals().exists()


def test_another_organisations_name_in_an_unclaimed_domain_gets_the_fixed_refusal_not_409(world, scim):
    """GIVEN Globex's owner@globex.test and no provider listing globex.test WHEN Acme's token
    creates that userName, or renames an account to it THEN the same fixed 403 as a claimed
    domain's (never "exists already"), recorded; nothing changes."""
    _globex_lists(world, "globex.example")
    claimed = scim.post("/Users", _user("someone@globex.example"))
    taken = scim.post("/Users", _user(world.foreign_user.email))
    person = world.users["viewer"]
    renamed = scim.put(f"/Users/{person.pk}", _user(world.foreign_user.email))
    assert claimed.status_code == taken.status_code == renamed.status_code == 403
    assert scim_error(taken) == scim_error(claimed) == scim_error(renamed)
    assert "exists" not in scim_error(taken)["detail"]
    assert _refusals("address of another organisation").count() == 2
    person.refresh_from_db()
    assert person.email == "viewer@acme.test"


def test_a_taken_name_of_the_own_organisation_is_still_a_conflict(world, scim):
    """GIVEN an Acme account WHEN Acme's token creates the same userName THEN 409 uniqueness (the
    token may know its own organisation's accounts)."""
    response = scim.post("/Users", _user(world.users["viewer"].email))
    assert response.status_code == 409
    assert scim_error(response)["scimType"] == "uniqueness"


CONTROL_PANEL_ROLES = ["platform_admin", "workspace_owner", "compliance_officer", "auditor"]
CHANGES = {
    "e-mail": {"Operations": [{"op": "replace", "path": "userName", "value": "renamed@acme.test"}]},
    "active": {"Operations": [{"op": "replace", "path": "active", "value": False}]},
    "name": {"Operations": [{"op": "replace", "path": "displayName", "value": "Someone Else"}]},
}


@pytest.mark.parametrize("role", CONTROL_PANEL_ROLES)
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_accounts_holding_a_control_panel_role_are_not_changed_by_scim(world, scim, role, change):
    """GIVEN an account holding a control-panel role WHEN the token PATCHes its e-mail, active flag
    or name THEN 403, the account is unchanged, and the refusal is recorded with the fields."""
    person = world.users[role]
    before = (person.email, person.is_active, person.display_name)
    response = scim.patch(f"/Users/{person.pk}", CHANGES[change])
    assert response.status_code == 403, response.content
    assert "control-panel role" in scim_error(response)["detail"]
    person.refresh_from_db()
    assert (person.email, person.is_active, person.display_name) == before
    event = _refusals("control-panel account").get()
    assert event.target_id == str(person.pk)
    assert event.outcome == "denied"
    assert not AuditEvent.objects.filter(action__in=["scim.user_patched", "user.updated"]).exists()


@pytest.mark.parametrize("role", CONTROL_PANEL_ROLES)
def test_accounts_holding_a_control_panel_role_are_not_deleted_by_scim(world, scim, role):
    person = world.users[role]
    response = scim.delete(f"/Users/{person.pk}")
    assert response.status_code == 403
    person.refresh_from_db()
    assert person.is_active
    assert person.deprovisioned_at is None
    assert _refusals("control-panel account").count() == 1


def test_the_external_id_of_a_control_panel_account_may_still_be_linked(world, scim):
    """GIVEN an officer WHEN the IdP PATCHes only its externalId (how it links an existing account)
    THEN 200: the id is bookkeeping of the IdP's, it changes nothing the portal decides on."""
    person = world.users["compliance_officer"]
    patch = {"Operations": [{"op": "replace", "path": "externalId", "value": "idp-42"}]}
    assert scim.patch(f"/Users/{person.pk}", patch).status_code == 200
    person.refresh_from_db()
    assert person.scim_external_id == "idp-42"


def test_an_account_an_administrator_deactivated_is_not_reactivated_by_scim(world, scim):
    """GIVEN a viewer an administrator deactivated WHEN the token PATCHes or PUTs active=true THEN
    403 and the account stays deactivated; the refusal is recorded."""
    person = user_set_active(actor=world.users["platform_admin"], user=world.users["viewer"], active=False)
    assert person.deactivated_by == DeactivatedBy.ADMINISTRATOR
    reactivate = {"Operations": [{"op": "replace", "path": "active", "value": True}]}
    assert scim.patch(f"/Users/{person.pk}", reactivate).status_code == 403
    assert scim.put(f"/Users/{person.pk}", {"userName": person.email, "active": True}).status_code == 403
    person.refresh_from_db()
    assert not person.is_active
    assert _refusals("deactivated by an administrator").count() == 2


def test_an_account_scim_deactivated_is_reactivated_by_scim(world, scim):
    """GIVEN a viewer the IdP deactivated WHEN it reactivates them THEN 200 and the mark is cleared."""
    person = world.users["viewer"]
    deactivate = {"Operations": [{"op": "replace", "path": "active", "value": False}]}
    assert scim.patch(f"/Users/{person.pk}", deactivate).status_code == 200
    person.refresh_from_db()
    assert person.deactivated_by == DeactivatedBy.PROVISIONING
    reactivate = {"Operations": [{"op": "replace", "path": "active", "value": True}]}
    assert scim.patch(f"/Users/{person.pk}", reactivate).json()["active"] is True
    person.refresh_from_db()
    assert person.is_active
    assert person.deactivated_by == ""


@pytest.mark.parametrize(
    "sent", ["officer.case@acme.test", "OFFICER.CASE@ACME.TEST", "Officer.Case@acme.test"]
)
def test_a_user_name_differing_only_in_case_is_no_change_to_a_control_panel_account(world, scim, sent):
    """GIVEN an officer whose address is stored as Officer.Case@acme.test WHEN the token PATCHes
    userName to the same address in any case THEN it is no change: 200, the address is kept as
    stored, nothing is refused or recorded as changed; a different address is still refused."""
    person = world.users["compliance_officer"]
    User.objects.filter(pk=person.pk).update(email="Officer.Case@acme.test")
    patch = {"Operations": [{"op": "replace", "path": "userName", "value": sent}]}
    response = scim.patch(f"/Users/{person.pk}", patch)
    assert response.status_code == 200, response.content
    person.refresh_from_db()
    assert person.email == "Officer.Case@acme.test"
    assert not _refusals().exists()
    assert not AuditEvent.objects.filter(action="user.updated").exists()
    other = {"Operations": [{"op": "replace", "path": "userName", "value": "officer.other@acme.test"}]}
    assert scim.patch(f"/Users/{person.pk}", other).status_code == 403
    person.refresh_from_db()
    assert person.email == "Officer.Case@acme.test"
