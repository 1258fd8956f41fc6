"""Attacks on the OpenID Connect sign-in: expired, wrongly signed or misdirected ID tokens, a wrong
nonce, a wrong state. Each is refused, recorded as sso.login_failed with its reason, and starts no
session. (The SAML attacks are in test_sso_saml.py.)

The sign-in runs against the real OpenID provider; to play the attacker between it and the portal,
the token response it returns is rewritten (its ID token re-signed with the provider's own key, or
with another key) before the portal reads it.
"""

from __future__ import annotations

import time
from unittest import mock
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest

from accounts.models import User, UserSession
from accounts.sso.providers import PortalOIDCAdapter
from audit.models import AuditEvent
from tests.accounts.sso_world import connect_oidc, idp_authorize, local_path, oidc_callback, start_oidc_login
from tests.conftest import build_world
from tests.identity_providers import openid_provider
from tests.identity_providers.common import rsa_key

pytestmark = [
    pytest.mark.django_db(databases=["default", "secrets"]),
    # The test OpenID provider listens on http://127.0.0.1: the operator allow-lists it.
    pytest.mark.usefixtures("loopback_idp_allowed"),
]


@pytest.fixture(scope="module")
def idp():
    provider = openid_provider.start([oidc_callback()])
    yield provider
    openid_provider.stop(provider)


@pytest.fixture
def world(idp):
    world = build_world()
    connect_oidc(world, idp)
    return world


def _rewritten(idp, change, *, key=None):
    """A stand-in for the token endpoint's answer: the real one, its ID token changed by ``change``
    and signed again (with the provider's key unless ``key`` is given)."""
    real = PortalOIDCAdapter.get_access_token_data

    def fake(self, request, app, client, pkce_code_verifier=None):
        data = real(self, request, app, client, pkce_code_verifier=pkce_code_verifier)
        claims = jwt.decode(data["id_token"], options={"verify_signature": False})
        change(claims)
        data["id_token"] = jwt.encode(claims, key or idp.key, algorithm="RS256", headers={"kid": idp.kid})
        return data

    return mock.patch.object(PortalOIDCAdapter, "get_access_token_data", fake)


def _refused(client, reason_part: str) -> None:
    failed = AuditEvent.objects.filter(action="sso.login_failed").latest("occurred_at")
    assert reason_part in failed.data["reason"], failed.data
    assert failed.data["provider"] == "acme-oidc"
    assert "_auth_user_id" not in client.session
    assert not UserSession.objects.exists()
    assert not User.objects.filter(email="ada@acme.example").exists()
    assert not AuditEvent.objects.filter(action="sso.login").exists()


def _sign_in(client, idp):
    callback = idp_authorize(start_oidc_login(client), "ada", "ada-idp-pass")
    return client.get(local_path(callback))


def test_untouched_token_response_signs_in(world, idp, client):
    """GIVEN the rewriting changes nothing WHEN Ada signs in THEN she is in (the harness is sound)."""
    with _rewritten(idp, lambda claims: None):
        _sign_in(client, idp)
    assert "_auth_user_id" in client.session


def test_expired_id_token_is_refused(world, idp, client):
    def expire(claims):
        claims["iat"], claims["exp"] = int(time.time()) - 900, int(time.time()) - 600

    with _rewritten(idp, expire):
        response = _sign_in(client, idp)
    assert response.status_code == 401
    _refused(client, "expired")


def test_id_token_signed_by_another_key_is_refused(world, idp, client):
    with _rewritten(idp, lambda claims: None, key=rsa_key()):
        _sign_in(client, idp)
    _refused(client, "Signature verification failed")


def test_id_token_for_another_client_is_refused(world, idp, client):
    with _rewritten(idp, lambda claims: claims.update(aud="another-client")):
        _sign_in(client, idp)
    _refused(client, "Audience")


def test_id_token_with_the_wrong_nonce_is_refused(world, idp, client):
    with _rewritten(idp, lambda claims: claims.update(nonce="nonce-of-another-sign-in")):
        _sign_in(client, idp)
    _refused(client, "wrong nonce")


def test_unsigned_id_token_is_refused(world, idp, client):
    """GIVEN an ID token with alg "none" WHEN it reaches the portal THEN it is refused."""
    real = PortalOIDCAdapter.get_access_token_data

    def fake(self, request, app, client_, pkce_code_verifier=None):
        data = real(self, request, app, client_, pkce_code_verifier=pkce_code_verifier)
        claims = jwt.decode(data["id_token"], options={"verify_signature": False})
        data["id_token"] = jwt.encode(claims, key=None, algorithm="none")
        return data

    with mock.patch.object(PortalOIDCAdapter, "get_access_token_data", fake):
        _sign_in(client, idp)
    _refused(client, "not accepted")


def test_wrong_state_is_refused(world, idp, client):
    """GIVEN the IdP's answer comes back with another state WHEN the callback runs THEN refused."""
    callback = idp_authorize(start_oidc_login(client), "ada", "ada-idp-pass")
    parts = urlsplit(callback)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query["state"] = "forged-state"
    response = client.get(f"{parts.path}?{urlencode(query)}")
    assert response.status_code == 401
    _refused(client, "state unknown")


def test_code_from_another_browser_is_refused(world, idp, client):
    """GIVEN an attacker's own callback URL (code and state of the attacker's sign-in) WHEN the
    victim's browser is made to open it THEN the victim's session has no such state: refused."""
    from django.test import Client

    attacker = Client()
    callback = idp_authorize(start_oidc_login(attacker), "ada", "ada-idp-pass")
    start_oidc_login(client)  # the victim has a sign-in of their own in progress
    client.get(local_path(callback))
    _refused(client, "state unknown")
