"""Reads about accounts that provisioning (SCIM) and single sign-on share: which e-mail domains an
organisation holds, whether a domain is held by another one, and whether an account holds a role
that opens the control panel."""

from __future__ import annotations

from accounts.models import IdentityProvider, User
from governance.tenancy.models import Membership

# The action that opens the control panel; a role holding it is a control-panel role.
CONTROL_PANEL_ACTION = "admin.access"


def email_domain(address: str) -> str:
    """The domain part of ``address`` as stored in ``allowed_domains`` (lower case, punycode);
    empty when the address has none or it cannot be encoded."""
    _, at, domain = (address or "").strip().lower().rpartition("@")
    if not at or not domain:
        return ""
    try:
        return domain.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def organization_domains(organization_id: int) -> set[str]:
    """The e-mail domains ``organization_id`` claims: those its identity providers list."""
    domains: set[str] = set()
    for listed in IdentityProvider.objects.filter(organization_id=organization_id).values_list(
        "allowed_domains", flat=True
    ):
        domains.update(listed or [])
    return domains


def domain_claimed_elsewhere(domain: str, organization_id: int) -> bool:
    """Whether ``domain`` belongs to another organisation: one of its identity providers lists it.

    Only a provider's allowed domains make a claim: accounts with addresses in a domain do not (a
    public mail domain used by people of several organisations belongs to none of them). The
    answer depends on the domain only, never on whether one particular address exists."""
    if not domain:
        return False
    return (
        IdentityProvider.objects.exclude(organization_id=organization_id)
        .filter(allowed_domains__contains=[domain])
        .exists()
    )


def user_holds_control_panel_role(user: User) -> bool:
    """Whether ``user`` holds any role that opens the control panel (administrators, owners,
    officers, auditors: what the roles' data says, not a fixed list)."""
    return Membership.objects.filter(user_id=user.pk, role__permissions__action=CONTROL_PANEL_ACTION).exists()
