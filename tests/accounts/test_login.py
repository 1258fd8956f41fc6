"""Signing in: e-mail and password at /accounts/login/, the control panel only for its roles."""

from __future__ import annotations

from django.urls import reverse

from tests.conftest import PASSWORD, app_code_of, mfa_device_for


def test_builder_signs_in_and_lands_on_home(world, client):
    """GIVEN an enrolled builder WHEN they type their password and their app's code THEN home."""
    device = mfa_device_for(world.users["workflow_builder"])
    response = client.post(
        reverse("account_login"), {"login": "WORKFLOW_BUILDER@acme.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.get(reverse("home"))["Location"].startswith(reverse("account-mfa-verify"))
    client.post(reverse("account-mfa-verify"), {"code": app_code_of(device)})
    assert "Ops EU" in client.get(reverse("home")).content.decode()


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(world, client):
    response = client.post(reverse("account_login"), {"login": "viewer@acme.test", "password": "nope"})
    assert response.status_code == 200
    assert "not correct" in response.content.decode()


def test_builder_cannot_open_the_control_panel(world, client):
    response = client.post(
        reverse("admin:login"), {"username": "workflow_builder@acme.test", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert "no role that opens the control panel" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_officer_opens_the_control_panel(world, client):
    """GIVEN an enrolled officer WHEN they sign in at the control panel THEN after their app's
    code (the panel sends them to verification) it opens."""
    device = mfa_device_for(world.users["compliance_officer"])
    response = client.post(
        reverse("admin:login"), {"username": "compliance_officer@acme.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 302
    client.post(reverse("account-mfa-verify"), {"code": app_code_of(device)})
    assert client.get(reverse("admin:index")).status_code == 200


def test_signup_is_closed(db, client):
    response = client.get(reverse("account_signup"))
    assert "Sign Up Closed" in response.content.decode() or response.status_code in (403, 404)


def test_anonymous_home_redirects_to_login(db, client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_nobody_changes_their_own_sign_in_address_on_a_self_service_page(db, client):
    """GIVEN a signed-in person WHEN they try allauth's address pages (add an address, make it
    primary, confirm one) THEN each answers 404 and the account's address is unchanged: addresses
    are governed by administrators, SCIM and single sign-on, never swapped for an unverified one."""
    from tests.factories import UserFactory

    user = UserFactory(email="viewer@acme.test")
    client.force_login(user)
    for data in (
        {"action_add": "", "email": "squat@globex.test"},
        {"action_primary": "", "email": "squat@globex.test"},
    ):
        assert client.post(reverse("account_email"), data).status_code == 404
    assert client.get(reverse("account_email")).status_code == 404
    assert client.get(reverse("account_confirm_email", args=["abc:def"])).status_code == 404
    user.refresh_from_db()
    assert user.email == "viewer@acme.test"
