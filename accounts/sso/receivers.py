"""After an SSO sign-in: the MFA decision goes into the session, the sign-in into the ledger."""

from __future__ import annotations

from allauth.account.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

from accounts.sessions import session_ref_of
from accounts.sso import services


@receiver(user_logged_in, dispatch_uid="accounts.sso_login")
def sso_logged_in(sender, request, user, **kwargs) -> None:
    sso = getattr(request, "portal_sso", None)
    if sso is None or kwargs.get("sociallogin") is None:
        return
    provider, claim = sso["provider"], sso["mfa_claim"]
    # The contract with the MFA middleware: present only when the IdP's MFA claim is trusted and
    # was accepted; otherwise local MFA is demanded.
    request.session.pop("mfa_via_idp", None)
    if claim is not None:
        request.session["mfa_via_idp"] = {
            "provider": provider.slug,
            "claim": claim,
            "at": timezone.now().isoformat(),
        }
    key = request.session.session_key or ""
    services.sso_login_record(
        user=user,
        provider=provider,
        session_ref=session_ref_of(key)[:16] if key else "",
        mfa_claim=claim,
        memberships=sso["memberships"],
    )
