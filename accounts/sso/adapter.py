"""The socialaccount adapter: allauth's apps come from our ``IdentityProvider`` rows; each SSO
sign-in is checked (state, nonce, replay, organisation), its account found or provisioned, its
mapped memberships applied, and every refusal recorded with its reason."""

from __future__ import annotations

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount import app_settings as socialaccount_settings
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.base.constants import AuthProcess
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse

from accounts.models import IdentityProvider, ProviderKind
from accounts.sso import services
from accounts.sso.fetch import boundary_session
from accounts.sso.selectors import scim_group_names
from accounts.sso.services import SsoRefusedError
from audit.services import audited_transaction
from governance.core.redaction import redact_text

PROVIDER_SETTING = "portal_provider"  # the IdentityProvider pk inside SocialApp.settings


def social_app_for(provider: IdentityProvider, *, with_secret: bool):
    """An unsaved allauth ``SocialApp`` describing ``provider``."""
    if provider.kind == ProviderKind.OIDC:
        return SocialApp(
            provider="openid_connect",
            provider_id=provider.slug,
            name=provider.name,
            client_id=provider.oidc_client_id,
            secret=(provider.oidc_client_secret or "") if with_secret else "",
            settings={
                PROVIDER_SETTING: str(provider.pk),
                "server_url": provider.oidc_issuer,
                "oauth_pkce_enabled": True,
                "fetch_userinfo": True,
            },
        )
    attribute_mapping = {"uid": [], "email": [provider.email_claim] if provider.email_claim else []}
    return SocialApp(
        provider="saml",
        provider_id=provider.slug,
        name=provider.name,
        client_id=provider.slug,
        settings={
            PROVIDER_SETTING: str(provider.pk),
            "idp": {
                "entity_id": provider.saml_idp_entity_id,
                "sso_url": provider.saml_idp_sso_url,
                "x509cert": provider.saml_idp_x509_cert,
            },
            "sp": {"entity_id": provider.saml_sp_entity_id} if provider.saml_sp_entity_id else {},
            "attribute_mapping": attribute_mapping,
            "use_nameid_for_email": not provider.email_claim,
            "advanced": {
                "strict": True,
                "want_assertion_signed": True,
                "reject_idp_initiated_sso": True,
                "reject_deprecated_algorithm": True,
                "want_attribute_statement": False,
            },
        },
    )


def provider_of(sociallogin_or_provider) -> IdentityProvider | None:
    provider = getattr(sociallogin_or_provider, "provider", sociallogin_or_provider)
    app = getattr(provider, "app", None)
    pk = (app.settings or {}).get(PROVIDER_SETTING) if app is not None else None
    return IdentityProvider.objects.select_related("organization").filter(pk=pk).first() if pk else None


def _refuse(request, refusal: SsoRefusedError, provider: IdentityProvider | None, subject: str = "") -> None:
    services.sso_login_failed_record(reason=refusal.reason, provider=provider, subject=subject)
    messages.error(request, refusal.message)
    raise ImmediateHttpResponse(HttpResponseRedirect(reverse("account_login")))


def _claims(sociallogin) -> tuple[dict, dict]:
    extra = sociallogin.account.extra_data or {}
    return extra.get("id_token") or {}, extra.get("userinfo") or {}


def groups_of(provider: IdentityProvider, sociallogin) -> list[str]:
    if provider.kind == ProviderKind.OIDC:
        id_token, userinfo = _claims(sociallogin)
        raw = userinfo.get(provider.groups_claim, id_token.get(provider.groups_claim, []))
    else:
        raw = (sociallogin.account.extra_data or {}).get(provider.groups_claim, [])
    if isinstance(raw, str):
        raw = [raw]
    return [str(group) for group in raw if str(group).strip()] if isinstance(raw, list) else []


def mfa_claim_of(provider: IdentityProvider, sociallogin) -> str | None:
    """The accepted MFA claim this sign-in carries, when the provider's MFA is trusted; else None."""
    if not provider.trust_idp_mfa:
        return None
    accepted = set(provider.accepted_mfa_claims or [])
    if provider.kind == ProviderKind.OIDC:
        id_token, _ = _claims(sociallogin)
        amr = id_token.get("amr") or []
        for value in amr if isinstance(amr, list) else []:
            if value in accepted:
                return f"amr:{value}"
        acr = id_token.get("acr")
        return f"acr:{acr}" if isinstance(acr, str) and acr in accepted else None
    for context in getattr(sociallogin, "portal_saml", {}).get("authn_contexts", []):
        if context in accepted:
            return f"AuthnContextClassRef:{context}"
    return None


class GovernedSocialAccountAdapter(DefaultSocialAccountAdapter):
    """allauth's socialaccount adapter with our identity providers and our checks."""

    def list_apps(self, request, provider=None, client_id=None):
        apps = []
        for row in IdentityProvider.objects.filter(enabled=True).order_by("name"):
            app = social_app_for(row, with_secret=False)
            if provider and provider not in (app.provider, app.provider_id):
                continue
            if client_id and app.client_id != client_id:
                continue
            if provider and row.kind == ProviderKind.OIDC:
                app.secret = row.oidc_client_secret or ""  # decrypted only for the sign-in that needs it
            apps.append(app)
        return apps

    def get_requests_session(self):
        """Every fetch allauth makes (discovery, token, userinfo, JWKS) goes through the network
        boundary. These fetches are triggered by sign-ins, that is by anonymous requests, so only
        the operator's ``OUTBOUND_ALLOW_LIST`` may lift a refusal: the organisation's own
        allow-list rules (``NetworkAllowRule``, set by its administrators for integrations) never
        do — the same rule the issuer is checked by when it is saved (``IdentityProvider.clean``)."""
        return boundary_session(organization_id=None, timeout=socialaccount_settings.REQUESTS_TIMEOUT)

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return False  # accounts are provisioned in pre_social_login, never through a signup form

    def pre_social_login(self, request, sociallogin) -> None:
        provider = provider_of(sociallogin)
        if provider is None or not provider.enabled:
            _refuse(request, SsoRefusedError("the identity provider is not enabled"), provider)
        subject = sociallogin.account.uid or ""
        try:
            self._check(request, provider, sociallogin)
            user = self._account(request, provider, sociallogin)
            # The groups of the sign-in, and those the IdP pushed over SCIM (when it does).
            groups = sorted({*groups_of(provider, sociallogin), *scim_group_names(user)})
            changes = services.sso_memberships_apply(provider=provider, user=user, groups=groups)
        except SsoRefusedError as refusal:
            _refuse(request, refusal, provider, subject)
        # Read after login by accounts.sso.receivers (the session key changes at login).
        request.portal_sso = {
            "provider": provider,
            "mfa_claim": mfa_claim_of(provider, sociallogin),
            "memberships": changes,
        }
        request.portal_login_method = f"sso:{provider.slug}"

    def _check(self, request, provider: IdentityProvider, sociallogin) -> None:
        state = sociallogin.state
        if not state:
            raise SsoRefusedError("no matching sign-in in progress (state unknown, replayed or unsolicited)")
        if state.get("process") != AuthProcess.LOGIN:
            raise SsoRefusedError(f"process {state.get('process')!r} is not allowed")
        if provider.kind == ProviderKind.OIDC:
            id_token, _ = _claims(sociallogin)
            if not id_token:
                raise SsoRefusedError("oidc: no ID token")
            if not state.get("nonce") or id_token.get("nonce") != state["nonce"]:
                raise SsoRefusedError("oidc: wrong nonce")
        else:
            facts = getattr(sociallogin, "portal_saml", None) or {}
            services.saml_assertion_consume(
                provider=provider,
                assertion_id=facts.get("assertion_id") or "",
                not_on_or_after=facts.get("not_on_or_after"),
            )

    def _account(self, request, provider: IdentityProvider, sociallogin):
        if sociallogin.is_existing:
            user = sociallogin.user
            if user.organization_id != provider.organization_id:
                raise SsoRefusedError("the linked account belongs to another organisation")
            services.sso_domain_check(provider=provider, email=user.email)
        else:
            email, verified = self._email(provider, sociallogin)
            # One transaction: the link (and its address row) is written with the event that
            # records the account's provisioning or linking, which covers it in the ledger.
            with audited_transaction():
                user = services.sso_user_resolve(
                    provider=provider,
                    email=email,
                    email_verified=verified,
                    display_name=str(
                        sociallogin.account.extra_data.get("name", "")
                        if provider.kind == ProviderKind.OIDC
                        else ""
                    ),
                )
                if user.is_active:  # a deactivated account gets no new link either
                    sociallogin.connect(request, user)
        if not user.is_active:
            raise SsoRefusedError("the account is deactivated", "This account is deactivated.")
        return user

    def _email(self, provider: IdentityProvider, sociallogin) -> tuple[str, bool]:
        if provider.kind == ProviderKind.OIDC:
            id_token, userinfo = _claims(sociallogin)
            claims = {**id_token, **userinfo}
            verified = claims.get("email_verified") in (True, "true", "True")
            return str(claims.get("email") or ""), verified
        # A SAML assertion signed by the organisation's own IdP vouches for the address.
        email = sociallogin.user.email if sociallogin.user is not None else ""
        return str(email or ""), True

    def on_authentication_error(
        self, request, provider, error=None, exception=None, extra_context=None
    ) -> None:
        extra_context = extra_context or {}
        reason = str(error or "error")
        if exception is not None:
            reason = f"{type(exception).__name__}: {exception}"
            cause = exception.__cause__
            if cause is not None:
                reason += f" ({type(cause).__name__}: {cause})"
        if extra_context.get("saml_errors"):
            reason = f"saml: {', '.join(extra_context['saml_errors'])}: {extra_context.get('saml_last_error_reason') or ''}"
        elif exception is None and "state_id" in extra_context:
            reason = "no matching sign-in in progress (state unknown, replayed or unsolicited)"
        # Error texts may quote the IdP's answer: bounded, and scrubbed of anything shaped like a secret.
        reason = redact_text(reason)[:300]
        row = provider_of(provider)
        services.sso_login_failed_record(reason=reason, provider=row, slug=getattr(provider, "id", ""))
        messages.error(request, "Single sign-on failed. Please try again.")
