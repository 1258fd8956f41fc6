"""The OpenID Connect sign-in and callback views, bound to our hardened adapter (allauth's own
views construct its stock adapter directly, which would skip the checks in accounts.sso.providers)."""

from __future__ import annotations

from allauth.account.internal.decorators import login_not_required
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from django.http import Http404, HttpRequest, HttpResponse

from accounts.sso.providers import PortalOIDCAdapter


@login_not_required
def oidc_login(request: HttpRequest, provider_id: str) -> HttpResponse:
    try:
        return OAuth2LoginView.adapter_view(PortalOIDCAdapter(request, provider_id))(request)
    except SocialApp.DoesNotExist:
        raise Http404("No such identity provider.") from None


@login_not_required
def oidc_callback(request: HttpRequest, provider_id: str) -> HttpResponse:
    try:
        return OAuth2CallbackView.adapter_view(PortalOIDCAdapter(request, provider_id))(request)
    except SocialApp.DoesNotExist:
        raise Http404("No such identity provider.") from None
