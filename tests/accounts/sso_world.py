"""Helpers of the SSO tests: identity provider rows for the world's organisation, and the
OpenID provider's sign-in driven over HTTP (the test client for the portal, requests for the IdP)."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from accounts.models import ProviderKind
from accounts.sso import services
from governance.tenancy.models import Role

OIDC_SLUG = "acme-oidc"
SAML_SLUG = "acme-saml"
TESTSERVER = "http://testserver"


def oidc_callback(base: str = TESTSERVER, slug: str = OIDC_SLUG) -> str:
    return f"{base}/accounts/oidc/{slug}/login/callback/"


def connect_oidc(world, idp, *, trust_mfa: bool = False, accepted=("mfa",), slug: str = OIDC_SLUG):
    """The world's organisation connects the running OpenID provider; builders' group → builder role."""
    admin = world.users["platform_admin"]
    provider = services.identity_provider_create(
        actor=admin, organization=world.org, kind=ProviderKind.OIDC, name="Acme login", slug=slug,
        oidc_issuer=idp.issuer, oidc_client_id=idp.client_id, client_secret=idp.client_secret,
        trust_idp_mfa=trust_mfa, accepted_mfa_claims=list(accepted) if trust_mfa else [],
    )  # fmt: skip
    services.group_mapping_create(
        actor=admin, provider=provider, group="portal-builders", workspace=world.ws,
        role=Role.objects.get(pk="workflow_builder"),
    )  # fmt: skip
    return provider


def idp_authorize(authorize_url: str, login: str, password: str, *, stop_at: str = TESTSERVER) -> str:
    """Sign in at the OpenID provider and return the URL it sends the browser back to."""
    browser = requests.Session()
    url = authorize_url
    for _ in range(10):
        response = browser.get(url, allow_redirects=False, timeout=10)
        if response.status_code == 200 and "/interaction/" in url:
            response = browser.post(
                url, data={"login": login, "password": password}, allow_redirects=False, timeout=10
            )
        location = response.headers.get("Location")
        assert location, f"{response.status_code}: {response.text[:500]}"
        if location.startswith("/"):
            location = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}{location}"
        if location.startswith(stop_at):
            return location
        url = location
    raise AssertionError("the OpenID provider never sent the browser back")


def start_oidc_login(client, slug: str = OIDC_SLUG) -> str:
    """Press the provider's sign-in button; return the authorization URL the portal redirects to."""
    response = client.post(f"/accounts/oidc/{slug}/login/")
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def oidc_sign_in(client, login: str, password: str, slug: str = OIDC_SLUG):
    """The whole sign-in through the OpenID provider; returns the portal's answer to the callback."""
    callback = idp_authorize(start_oidc_login(client, slug), login, password)
    return client.get(local_path(callback))
