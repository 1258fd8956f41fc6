"""The principal of a SCIM token at the decision point: the two account actions, in its own
organisation only; nothing else (deny by default)."""

from __future__ import annotations

import pytest

from accounts.models import User
from accounts.scim.principal import ScimPrincipal
from governance.access.decision import decide
from governance.access.queries import restrict

pytestmark = pytest.mark.django_db


@pytest.fixture
def principal(world):
    return ScimPrincipal(pk=1, name="IdP", organization_id=world.org.pk, token_prefix="0123abcd")


def test_it_manages_the_accounts_of_its_own_organisation_only(world, principal):
    assert decide(principal, "user.manage", world.users["viewer"]).allowed
    assert decide(principal, "user.view", world.users["viewer"]).allowed
    assert decide(principal, "user.manage", world.org).allowed
    assert not decide(principal, "user.manage", world.foreign_user).allowed
    assert not decide(principal, "user.manage", world.foreign_org).allowed


@pytest.mark.parametrize(
    "action", ["admin.access", "organization.manage", "membership.manage", "workflow.view", "no.such.action"]
)
def test_everything_else_is_denied(world, principal, action):
    assert not decide(principal, action).allowed
    assert not decide(principal, action, world.ws).allowed


def test_lists_hold_its_organisation_only(world, principal):
    visible = set(restrict(User.objects.all(), principal, "user.view"))
    assert visible == set(User.objects.filter(organization=world.org))
    assert not restrict(User.objects.all(), principal, "membership.view").exists()


def test_a_token_id_equal_to_a_user_id_is_no_self_deactivation(world):
    """A principal's pk names a token, not a person: it may deactivate the user with that id."""
    from accounts.services import user_set_active

    person = world.users["viewer"]
    same_id = ScimPrincipal(pk=person.pk, name="IdP", organization_id=world.org.pk, token_prefix="0123abcd")
    assert not user_set_active(actor=same_id, user=person, active=False).is_active
