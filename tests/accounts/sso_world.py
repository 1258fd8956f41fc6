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


IDP_DOMAINS = ("acme.example",)  # the domain of the test IdPs' accounts


def connect_oidc(
    world, idp, *, trust_mfa: bool = False, accepted=("mfa",), slug: str = OIDC_SLUG, domains=IDP_DOMAINS
):
    """The world's organisation connects the running OpenID provider; builders' group → builder role."""
    admin = world.users["platform_admin"]
    provider = services.identity_provider_create(
        actor=admin, organization=world.org, kind=ProviderKind.OIDC, name="Acme login", slug=slug,
        oidc_issuer=idp.issuer, oidc_client_id=idp.client_id, client_secret=idp.client_secret,
        trust_idp_mfa=trust_mfa, accepted_mfa_claims=list(accepted) if trust_mfa else [],
        allowed_domains=list(domains),
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


SP_ENTITY_ID = "https://portal.test/sp"


def saml_acs(base: str = TESTSERVER, slug: str = SAML_SLUG) -> str:
    return f"{base}/accounts/saml/{slug}/acs/"


def connect_saml(
    world, idp, *, trust_mfa: bool = False, accepted=(), slug: str = SAML_SLUG, domains=IDP_DOMAINS
):
    """The world's organisation connects the running SAML IdP; builders' group → builder role."""
    admin = world.users["platform_admin"]
    provider = services.identity_provider_create(
        actor=admin, organization=world.org, kind=ProviderKind.SAML, name="Acme SAML", slug=slug,
        saml_idp_entity_id=idp.entity_id, saml_idp_sso_url=idp.sso_url, saml_idp_x509_cert=idp.cert_pem,
        saml_sp_entity_id=SP_ENTITY_ID, trust_idp_mfa=trust_mfa, accepted_mfa_claims=list(accepted),
        allowed_domains=list(domains),
    )  # fmt: skip
    services.group_mapping_create(
        actor=admin, provider=provider, group="portal-builders", workspace=world.ws,
        role=Role.objects.get(pk="workflow_builder"),
    )  # fmt: skip
    return provider


def start_saml_login(client, slug: str = SAML_SLUG) -> str:
    """Press the SAML sign-in button; return the IdP URL (with the AuthnRequest) it redirects to."""
    response = client.post(f"/accounts/saml/{slug}/login/")
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def saml_request_of(redirect_url: str) -> tuple[str, str]:
    from urllib.parse import parse_qs

    query = parse_qs(urlsplit(redirect_url).query)
    return query["SAMLRequest"][0], query.get("RelayState", [""])[0]


def post_to_acs(client, saml_response: str, relay_state: str = "", slug: str = SAML_SLUG):
    """Post a SAMLResponse to the portal's ACS as the browser would, and follow to the finish step."""
    response = client.post(
        f"/accounts/saml/{slug}/acs/", {"SAMLResponse": saml_response, "RelayState": relay_state}
    )
    assert response.status_code == 302, response.content[:500]
    return client.get(response["Location"])


def saml_sign_in(client, idp, login: str, slug: str = SAML_SLUG):
    """The whole SP-initiated sign-in; returns (the portal's answer, the SAMLResponse it got)."""
    saml_request, relay = saml_request_of(start_saml_login(client, slug))
    saml_response = idp.respond(idp.parse_request(saml_request), login)
    return post_to_acs(client, saml_response, relay, slug), saml_response
