"""The OpenID Connect sign-in and callback views, bound to our hardened adapter (allauth's own
views construct its stock adapter directly, which would skip the checks in accounts.sso.providers)."""

from __future__ import annotations

from urllib.parse import urlsplit

from allauth.account.internal.decorators import login_not_required
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from allauth.socialaccount.providers.saml import views as saml_views
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from requests import RequestException

from accounts.models import IdentityProvider, ProviderKind
from accounts.sso import services
from accounts.sso.fetch import BoundaryRefusedError
from accounts.sso.providers import OpenIDDiscoveryError, PortalOIDCAdapter
from governance.core.redaction import redact_text


def _allow_form_action_to_idp(response: HttpResponse, slug: str) -> HttpResponse:
    """The sign-in button's form posts to us and is redirected to the IdP; browsers apply the
    CSP's form-action to that redirect, so this page's policy names the IdP's origin too."""
    policy = settings.CONTENT_SECURITY_POLICY
    provider = IdentityProvider.objects.filter(slug=slug, enabled=True).first()
    if not policy or provider is None or "form-action 'self'" not in policy:
        return response
    url = provider.oidc_issuer if provider.kind == ProviderKind.OIDC else provider.saml_idp_sso_url
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        response["Content-Security-Policy"] = policy.replace(
            "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}"
        )
    return response


@login_not_required
def oidc_login(request: HttpRequest, provider_id: str) -> HttpResponse:
    try:
        response = OAuth2LoginView.adapter_view(PortalOIDCAdapter(request, provider_id))(request)
    except SocialApp.DoesNotExist:
        raise Http404("No such identity provider.") from None
    except (RequestException, OpenIDDiscoveryError) as error:
        # Discovery failed before the browser could be sent anywhere: the issuer was refused by
        # the network boundary, did not answer, or sent no usable document. Recorded; the person
        # is sent back to the sign-in page.
        return _discovery_failed(request, provider_id, error)
    return _allow_form_action_to_idp(response, provider_id)


def _discovery_failed(request: HttpRequest, slug: str, error: Exception) -> HttpResponse:
    provider = IdentityProvider.objects.filter(slug=slug).first()
    refused = isinstance(error, BoundaryRefusedError)
    kind = "refused by the network boundary" if refused else "discovery failed"
    services.sso_login_failed_record(
        reason=redact_text(f"oidc: {kind}: {error}")[:300], provider=provider, slug=slug
    )
    messages.error(
        request,
        "Single sign-on is unavailable: the identity provider's address is not allowed."
        if refused
        else "Single sign-on is unavailable: the identity provider's configuration could not be read.",
    )
    return HttpResponseRedirect(reverse("account_login"))


@login_not_required
def saml_login(request: HttpRequest, organization_slug: str) -> HttpResponse:
    return _allow_form_action_to_idp(
        saml_views.login(request, organization_slug=organization_slug), organization_slug
    )


@login_not_required
def oidc_callback(request: HttpRequest, provider_id: str) -> HttpResponse:
    try:
        return OAuth2CallbackView.adapter_view(PortalOIDCAdapter(request, provider_id))(request)
    except SocialApp.DoesNotExist:
        raise Http404("No such identity provider.") from None
