"""Single sign-on in a real browser (headless Chromium): a person signs in through the
organisation's OpenID provider (oidc-provider) and through its SAML IdP (pysaml2), both started
on 127.0.0.1 by the test, and lands signed in with the role the group mapping gives."""

from __future__ import annotations

import pytest

from tests.accounts.sso_world import SP_ENTITY_ID, connect_oidc, connect_saml, oidc_callback, saml_acs
from tests.conftest import build_world
from tests.identity_providers import openid_provider, saml_idp

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "secrets"]),
    # The test OpenID provider listens on http://127.0.0.1: the operator allow-lists it.
    pytest.mark.usefixtures("loopback_idp_allowed"),
]


def _signed_in_as(email: str, workspace, role: str) -> None:
    from accounts.models import User, UserSession
    from governance.tenancy.models import Membership

    user = User.objects.get(email=email)
    assert UserSession.objects.filter(user=user, ended_at__isnull=True).count() == 1
    assert list(Membership.objects.filter(user=user).values_list("workspace_id", "role_id")) == [
        (workspace.pk, role)
    ]


def test_sign_in_through_the_openid_provider(browser, live_server):
    """GIVEN Acme's OpenID provider is connected WHEN Ada picks it on the sign-in page and signs in
    at the provider THEN she is back in the portal, signed in, a builder in Ops EU."""
    idp = openid_provider.start([oidc_callback(live_server.url)])
    try:
        world = build_world()
        connect_oidc(world, idp, trust_mfa=True)
        page = browser.new_page()
        checked = browser.checked
        page.goto(f"{live_server.url}/accounts/login/")
        browser.settle(page, since=checked)
        checked = browser.checked
        page.get_by_role("link", name="Acme login").click()
        browser.settle(page, since=checked)
        with page.expect_navigation():
            page.get_by_role("button", name="Continue").click()
        assert page.url.startswith(idp.issuer), page.url
        page.fill("input[name=login]", "ada")
        page.fill("input[name=password]", "ada-idp-pass")
        checked = browser.checked  # the provider's own pages are not the portal's to check
        with page.expect_navigation(url=f"{live_server.url}/**"):
            page.get_by_role("button", name="Sign in at the IdP").click()
        page.wait_for_load_state()
        browser.settle(page, since=checked)
        assert "/login" not in page.url, page.content()[:2000]
        _signed_in_as("ada@acme.example", world.ws, "workflow_builder")
    finally:
        openid_provider.stop(idp)


def test_sign_in_through_the_saml_idp(browser, live_server):
    """GIVEN Acme's SAML IdP is connected WHEN Grace picks it and signs in at the IdP THEN the
    signed response is posted back to the portal and she is signed in, a builder in Ops EU."""
    idp = saml_idp.start(SP_ENTITY_ID, [saml_acs(live_server.url)])
    try:
        world = build_world()
        connect_saml(world, idp)
        page = browser.new_page()
        checked = browser.checked
        page.goto(f"{live_server.url}/accounts/login/")
        browser.settle(page, since=checked)
        checked = browser.checked
        page.get_by_role("link", name="Acme SAML").click()
        browser.settle(page, since=checked)
        with page.expect_navigation():
            page.get_by_role("button", name="Continue").click()
        assert page.url.startswith(idp.base), page.url
        page.fill("input[name=login]", "grace")
        page.fill("input[name=password]", "grace-idp-pass")
        checked = browser.checked  # the IdP's own pages are not the portal's to check
        page.get_by_role("button", name="Sign in at the SAML IdP").click()
        page.wait_for_url(f"{live_server.url}/**")
        page.wait_for_load_state()
        browser.settle(page, since=checked)
        assert "/login" not in page.url, page.content()[:2000]
        assert "/saml/" not in page.url
        _signed_in_as("grace@acme.example", world.ws, "workflow_builder")
    finally:
        saml_idp.stop(idp)
