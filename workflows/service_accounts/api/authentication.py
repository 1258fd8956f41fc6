"""API authentication of service accounts: ``Authorization: Bearer gpsa_<prefix>_<secret>``."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from governance.core.middleware import client_ip
from workflows.service_accounts.principals import SERVICE_ACCOUNT_TOKENS
from workflows.service_accounts.services import (
    SERVICE_ACCOUNT_THROTTLE,
    ServiceAccountAuthenticationError,
    service_account_authenticate,
    service_account_lockout_record,
)


class ServiceAccountAuthentication(BaseAuthentication):
    """Authenticate a service account's bearer token; other bearer tokens are left to others.

    The request's user becomes a ``ServiceAccountPrincipal``; the decision point confines it to
    its scopes and its workspace. The Django request is marked so that the usage middleware
    records the request (method, path, status) in the ledger.
    """

    keyword = b"bearer"
    # Failed attempts are throttled: any operation this class authenticates may answer 429
    # (documented per operation by governance.core.api.AutoSchema).
    error_statuses = (429,)

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send exactly one token after 'Bearer'.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token is not ASCII.") from None
        if not token.startswith(SERVICE_ACCOUNT_TOKENS.mark):
            return None
        # Failed attempts count per token prefix and per client address. A locked address is
        # refused (429, Retry-After) before any token is looked up; a locked prefix refuses only
        # wrong secrets (429, not recorded one by one): its holder's correct token still works.
        prefix = SERVICE_ACCOUNT_TOKENS.parse(token).prefix
        address = client_ip(request._request)
        lockout = SERVICE_ACCOUNT_THROTTLE.locked(prefix=None, address=address)
        if lockout is not None:
            raise exceptions.Throttled(
                wait=lockout.retry_after, detail="Too many failed service-account token attempts."
            )
        held = SERVICE_ACCOUNT_THROTTLE.locked(prefix=prefix, address=None)
        try:
            principal = service_account_authenticate(token=token, record_failure=held is None)
        except ServiceAccountAuthenticationError:
            for begun in SERVICE_ACCOUNT_THROTTLE.failed(prefix=prefix, address=address):
                service_account_lockout_record(lockout=begun, prefix=prefix, address=address)
            if held is not None:
                raise exceptions.Throttled(
                    wait=held.retry_after, detail="Too many failed service-account token attempts."
                ) from None
            # One message for every reason: the ledger knows which, the caller need not.
            raise exceptions.AuthenticationFailed(
                "Invalid, expired or revoked service-account token."
            ) from None
        request._request.service_account_principal = principal
        return principal, None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ServiceAccountAuthenticationScheme(OpenApiAuthenticationExtension):
    """How the API schema describes service-account tokens."""

    target_class = "workflows.service_accounts.api.authentication.ServiceAccountAuthentication"
    name = "serviceAccountToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "gpsa_<prefix>_<secret>"}
