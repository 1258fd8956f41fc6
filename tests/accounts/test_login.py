"""Signing in: e-mail and password at /accounts/login/, the control panel only for its roles."""

from __future__ import annotations

from django.urls import reverse

from tests.conftest import PASSWORD


def test_builder_signs_in_and_lands_on_home(world, client):
    response = client.post(
        reverse("account_login"), {"login": "WORKFLOW_BUILDER@acme.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
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
    response = client.post(
        reverse("admin:login"), {"username": "compliance_officer@acme.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_signup_is_closed(db, client):
    response = client.get(reverse("account_signup"))
    assert "Sign Up Closed" in response.content.decode() or response.status_code in (403, 404)


def test_anonymous_home_redirects_to_login(db, client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
