"""allauth's OpenID Connect and SAML providers, hardened (installed through
``SOCIALACCOUNT_PROVIDERS[...]["provider_class"]``).

OpenID Connect: every authorization request carries a nonce kept in the login's state; the ID
token's signature is always checked against the provider's JWKS (allauth skips it when the token
came from the token endpoint); the query string cannot add scopes or authorization parameters.
SAML: the facts the adapter needs (assertion id and expiry for replay protection, the
AuthnContextClassRef for the MFA decision) are kept on the login.
"""

from __future__ import annotations

import secrets

from allauth.core.internal.deferred import jwt
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from allauth.socialaccount.providers.saml.provider import SAMLProvider
from django.core.exceptions import PermissionDenied

# Asymmetric signatures only: an HMAC "signed" with the public key, or "none", is refused.
ID_TOKEN_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
# What the sign-in reads from the discovery document (userinfo too: it is always fetched).
DISCOVERY_FIELDS = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint")


class OpenIDDiscoveryError(OAuth2Error):
    """The issuer's discovery document is not one the sign-in can use."""


class PortalOIDCAdapter(OpenIDConnectOAuth2Adapter):
    """Reads the discovery document through the network boundary (the adapter's session) and
    refuses one that lacks what the sign-in needs; decodes the ID token with its signature
    checked, whatever channel brought it."""

    @property
    def openid_config(self) -> dict:
        if not hasattr(self, "_openid_config"):
            with get_adapter().get_requests_session() as session:
                response = session.get(self.get_provider().server_url)
                response.raise_for_status()
                config = response.json()
            if not isinstance(config, dict):
                raise OpenIDDiscoveryError("the discovery document is not a JSON object")
            missing = [
                name for name in DISCOVERY_FIELDS if not isinstance(config.get(name), str) or not config[name]
            ]
            if missing:
                raise OpenIDDiscoveryError(f"the discovery document lacks {', '.join(missing)}")
            self._openid_config = config
        return self._openid_config

    def complete_login(self, request, app, token, **kwargs):
        # The ID token first: nothing is asked of the provider with an access token that came
        # with an ID token that does not verify.
        id_token = kwargs["response"].get("id_token")
        if not id_token:
            raise OAuth2Error("Invalid id_token: the token response has none")
        data = {"id_token": self._decode_id_token(app, id_token)}
        if app.settings.get("fetch_userinfo", True):
            data["userinfo"] = self._fetch_user_info(token.token)
            if data["userinfo"].get("sub") != data["id_token"].get("sub"):
                raise OAuth2Error("userinfo describes another subject than the ID token")
        return self.get_provider().sociallogin_from_response(request, data)

    def _decode_id_token(self, app, id_token: str) -> dict:
        try:
            algorithm = jwt.get_unverified_header(id_token).get("alg")
        except jwt.PyJWTError as error:
            raise OAuth2Error("Invalid id_token") from error
        if algorithm not in ID_TOKEN_ALGORITHMS:
            raise OAuth2Error(f"Invalid id_token: algorithm {algorithm!r} is not accepted")
        return jwtkit.verify_and_decode(
            credential=id_token,
            keys_url=self.openid_config["jwks_uri"],
            issuer=self.openid_config["issuer"],
            audience=app.client_id,
            lookup_kid=jwtkit.lookup_kid_jwk,
            verify_signature=True,
        )


class PortalOIDCProvider(OpenIDConnectProvider):
    """OpenID Connect with a nonce per login and no parameters taken from the query string."""

    oauth2_adapter_class = PortalOIDCAdapter

    def get_scope_from_request(self, request):
        return self.get_scope()

    def get_auth_params_from_request(self, request, action):
        return self.get_auth_params()

    def redirect(self, request, process, next_url=None, data=None, **kwargs):
        nonce = secrets.token_urlsafe(32)
        auth_params = dict(kwargs.pop("auth_params", None) or self.get_auth_params())
        auth_params["nonce"] = nonce
        # ``nonce`` is kept in the stashed state; the adapter compares it with the ID token's.
        return super().redirect(
            request, process, next_url, data, auth_params=auth_params, nonce=nonce, **kwargs
        )


class PortalSAMLProvider(SAMLProvider):
    """SAML, remembering what the adapter checks after python3-saml has validated the response."""

    def unstash_redirect_state(self, request, state_id):
        try:
            return super().unstash_redirect_state(request, state_id)
        except PermissionDenied:
            # No sign-in of this browser waits for this response (replayed, or answering another
            # browser's request): an empty state, which the adapter refuses and records.
            return {}

    def sociallogin_from_response(self, request, response):
        login = super().sociallogin_from_response(request, response)
        login.portal_saml = {
            "assertion_id": response.get_last_assertion_id(),
            "not_on_or_after": response.get_last_assertion_not_on_or_after(),
            "authn_contexts": list(response.get_last_authn_contexts() or []),
        }
        return login
