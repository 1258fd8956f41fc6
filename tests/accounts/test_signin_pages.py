"""Sign-in pages in the portal's look: no sign-up invitation (sign-up is closed), and no
"signed in" until the second factor passes."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD, app_code_of, mfa_device_for

pytestmark = pytest.mark.no_auto_mfa


def test_the_sign_in_page_is_the_portals_and_invites_no_sign_up(db):
    body = Client().get(reverse("account_login")).content.decode()
    assert "css/portal.css" in body
    assert "<title>Sign in · Governance portal</title>" in body
    assert "sign up" not in body.lower().replace("no sign-up here", "")
    assert reverse("account_signup") not in body
    assert '<label for="id_login">' in body
    assert '<label for="id_password">' in body


@pytest.mark.parametrize(("name", "signed_in"), [("account_reset_password", False), ("account_logout", True)])
def test_the_other_account_pages_share_the_look(world, name, signed_in):
    client = Client()
    if signed_in:
        client.force_login(world.users["viewer"])
    response = client.get(reverse(name))
    body = response.content.decode()
    assert response.status_code == 200
    assert "css/portal.css" in body
    assert "· Governance portal</title>" in body


def test_signed_in_is_said_only_after_the_second_factor(world):
    user = world.users["viewer"]
    device = mfa_device_for(user)
    client = Client()
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD}, follow=True)
    body = response.content.decode()
    assert response.redirect_chain[-1][0].startswith(reverse("account-mfa-verify"))
    assert "signed in" not in body.lower()
    verified = client.post(reverse("account-mfa-verify"), {"code": app_code_of(device)}, follow=True)
    assert f"Signed in as {user.email}." in verified.content.decode()


def test_a_wrong_password_is_a_clear_error_on_the_page(world):
    user = world.users["viewer"]
    response = Client().post(reverse("account_login"), {"login": user.email, "password": "not it"})
    body = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in body
    assert "css/portal.css" in body
