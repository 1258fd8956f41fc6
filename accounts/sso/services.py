"""Identity providers, group mappings and the sign-in policy (administrators, ``organization.manage``),
and what happens at an SSO sign-in: the account found or provisioned, the mapped memberships
applied, the outcome recorded. Each state change writes its ledger event in its transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.events import AccountEvent
from accounts.models import (
    GroupRoleMapping,
    IdentityProvider,
    ProviderKind,
    SamlAssertionUse,
    SignInPolicy,
    SsoMembership,
    User,
    validate_email_domain,
)
from accounts.selectors import domain_claimed_elsewhere, email_domain, user_holds_control_panel_role
from accounts.sso.selectors import scim_group_names
from audit.models import Outcome
from audit.services import audit_event_record, audited_transaction, diff_fields
from governance.access.decision import forget, require
from governance.tenancy.events import TenancyEvent
from governance.tenancy.models import Membership, Organization, RoleScope
from governance.tenancy.services import _guard_last_holder

PROVIDER_FIELDS = (
    "name",
    "slug",
    "enabled",
    "oidc_issuer",
    "oidc_client_id",
    "saml_idp_entity_id",
    "saml_idp_sso_url",
    "saml_idp_x509_cert",
    "saml_sp_entity_id",
    "groups_claim",
    "email_claim",
    "trust_idp_mfa",
    "accepted_mfa_claims",
    "allowed_domains",
)


class SsoRefusedError(Exception):
    """An SSO sign-in refused: ``reason`` goes to the ledger, ``message`` to the person."""

    def __init__(self, reason: str, message: str = "Single sign-on failed. Please try again.") -> None:
        super().__init__(reason)
        self.reason, self.message = reason, message


# --- configuration (administrators) -----------------------------------------------------------


def _snapshot(provider: IdentityProvider) -> dict[str, Any]:
    return {name: getattr(provider, name) for name in PROVIDER_FIELDS}


def _is_pem_certificate(text: str) -> bool:
    try:
        x509.load_pem_x509_certificate(text.strip().encode())
    except ValueError:
        return False
    return True


def _validate(provider: IdentityProvider, client_secret_set: bool) -> None:
    errors: dict[str, str] = {}
    if provider.kind == ProviderKind.OIDC:
        for name in ("oidc_issuer", "oidc_client_id"):
            if not getattr(provider, name):
                errors[name] = "Required for an OpenID Connect provider."
    elif provider.kind == ProviderKind.SAML:
        for name in ("saml_idp_entity_id", "saml_idp_sso_url", "saml_idp_x509_cert"):
            if not getattr(provider, name):
                errors[name] = "Required for a SAML identity provider."
        if provider.saml_idp_x509_cert and not _is_pem_certificate(provider.saml_idp_x509_cert):
            errors["saml_idp_x509_cert"] = "Paste the certificate in PEM form (-----BEGIN CERTIFICATE-----…)."
    if provider.trust_idp_mfa and not provider.accepted_mfa_claims:
        errors["accepted_mfa_claims"] = "Name the amr/acr or AuthnContextClassRef values that count as MFA."
    domain_error = _domains_error(provider)
    if domain_error:
        errors["allowed_domains"] = domain_error
    if errors:
        raise ValidationError(errors)
    provider.full_clean(exclude=["oidc_client_secret"])


def _domains_error(provider: IdentityProvider) -> str | None:
    """Why the provider's allowed domains cannot be saved, or None: at least one, each a domain
    in normal form, none listed by another organisation's provider."""
    domains = provider.allowed_domains
    if not isinstance(domains, list) or not domains:
        return "List the e-mail domains this provider may sign in (at least one, e.g. example.com)."
    for domain in domains:
        try:
            normal = validate_email_domain(domain)
        except ValidationError as error:
            return " ".join(error.messages)
        if normal != domain:
            return f"Write '{domain[:80]}' as {normal}."
        if domain_claimed_elsewhere(domain, provider.organization_id):
            return f"The domain {domain} is listed by another organisation's identity provider."
    return None


def identity_provider_create(
    *, actor, organization: Organization, kind: str, client_secret: str | None = None, **fields: Any
) -> IdentityProvider:
    """Connect an identity provider to ``organization``; the event never carries the secret."""
    unknown = set(fields) - set(PROVIDER_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be set here."))
    with audited_transaction():
        require(actor, "organization.manage", organization, fresh=True)
        provider = IdentityProvider(organization=organization, kind=kind, **fields)
        _validate(provider, bool(client_secret))
        if client_secret:
            provider.oidc_client_secret = client_secret
        provider.save()
        audit_event_record(
            action=AccountEvent.IDENTITY_PROVIDER_CREATED,
            actor=actor,
            target=provider,
            organization_id=organization.pk,
            data={"kind": kind, **_snapshot(provider), "client_secret_set": bool(client_secret)},
        )
    return provider


def identity_provider_update(
    *, actor, provider: IdentityProvider, client_secret: str | None = None, **changes: Any
) -> IdentityProvider:
    """Change a provider; ``client_secret`` replaces the stored one when given. The event has the diff."""
    unknown = set(changes) - set(PROVIDER_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed here."))
    with audited_transaction():
        provider = IdentityProvider.objects.select_for_update().get(pk=provider.pk)
        require(actor, "organization.manage", provider.organization, fresh=True)
        before = _snapshot(provider)
        for name, value in changes.items():
            setattr(provider, name, value)
        _validate(provider, bool(client_secret))
        diff = diff_fields(before, _snapshot(provider))
        if client_secret:
            provider.oidc_client_secret = client_secret
        if diff or client_secret:
            provider.updated_at = timezone.now()
            provider.save()
            audit_event_record(
                action=AccountEvent.IDENTITY_PROVIDER_UPDATED,
                actor=actor,
                target=provider,
                organization_id=provider.organization_id,
                data={"diff": diff, "client_secret_replaced": bool(client_secret)},
            )
    return provider


def group_mapping_create(
    *, actor, provider: IdentityProvider, group: str, workspace, role
) -> GroupRoleMapping:
    """Let members of IdP group ``group`` hold ``role`` in ``workspace`` (a workspace role)."""
    with audited_transaction():
        require(actor, "organization.manage", provider.organization, fresh=True)
        errors = {}
        if not group.strip():
            errors["group"] = "Name the group as the identity provider sends it."
        if workspace.organization_id != provider.organization_id:
            errors["workspace"] = "Choose a workspace of the provider's organisation."
        if role.scope != RoleScope.WORKSPACE:
            errors["role"] = "Only workspace roles can be given by an identity provider's group."
        if (
            not errors
            and GroupRoleMapping.objects.filter(
                provider=provider, group=group.strip(), workspace=workspace
            ).exists()
        ):
            errors["group"] = "This group already gives a role in this workspace."
        if errors:
            raise ValidationError(errors)
        mapping = GroupRoleMapping.objects.create(
            provider=provider, group=group.strip(), workspace=workspace, role=role
        )
        audit_event_record(
            action=AccountEvent.IDENTITY_PROVIDER_MAPPING_CREATED,
            actor=actor,
            target=mapping,
            organization_id=provider.organization_id,
            workspace_id=workspace.pk,
            data={
                "provider": provider.slug,
                "group": mapping.group,
                "role": role.pk,
                "workspace": workspace.slug,
            },
        )
    return mapping


def group_mapping_delete(*, actor, mapping: GroupRoleMapping) -> None:
    """Remove a mapping; memberships it gave go at each person's next SSO sign-in."""
    with audited_transaction():
        mapping = GroupRoleMapping.objects.select_related("provider", "workspace").get(pk=mapping.pk)
        require(actor, "organization.manage", mapping.provider.organization, fresh=True)
        audit_event_record(
            action=AccountEvent.IDENTITY_PROVIDER_MAPPING_DELETED,
            actor=actor,
            target=mapping,
            organization_id=mapping.provider.organization_id,
            workspace_id=mapping.workspace_id,
            data={
                "provider": mapping.provider.slug,
                "group": mapping.group,
                "role": mapping.role_id,
                "workspace": mapping.workspace.slug,
            },
        )
        mapping.delete()


def sign_in_policy_set(*, actor, organization: Organization, local_password_disabled: bool) -> SignInPolicy:
    """Switch password sign-in off (SSO mandatory) or on again for ``organization``'s people."""
    with audited_transaction():
        require(actor, "organization.manage", organization, fresh=True)
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        policy, _ = SignInPolicy.objects.get_or_create(organization=organization)
        if policy.local_password_disabled != local_password_disabled:
            if (
                local_password_disabled
                and not IdentityProvider.objects.filter(organization=organization, enabled=True).exists()
            ):
                raise ValidationError(
                    {
                        "local_password_disabled": "Connect and enable an identity provider first, or nobody can sign in."
                    }
                )
            policy.local_password_disabled = local_password_disabled
            policy.updated_at = timezone.now()
            policy.save()
            audit_event_record(
                action=AccountEvent.SIGN_IN_POLICY_CHANGED,
                actor=actor,
                target=policy,
                organization_id=organization.pk,
                data={"local_password_disabled": local_password_disabled},
            )
    return policy


# --- at sign-in (the system acts; the person is not signed in yet) ----------------------------


def sso_login_failed_record(
    *, reason: str, provider: IdentityProvider | None = None, slug: str = "", subject: str = ""
) -> None:
    """Record a refused SSO sign-in with its reason (nothing else is written)."""
    with transaction.atomic():
        audit_event_record(
            action=AccountEvent.SSO_LOGIN_FAILED,
            actor=None,
            outcome=Outcome.FAILED,
            organization_id=provider.organization_id if provider else None,
            data={
                "provider": provider.slug if provider else slug,
                "reason": reason[:300],
                "subject": subject[:254],
            },
        )


def saml_assertion_consume(
    *, provider: IdentityProvider, assertion_id: str, not_on_or_after: int | None
) -> None:
    """Mark an assertion as used; the second use of the same assertion is a replay."""
    if not assertion_id:
        raise SsoRefusedError("saml: the assertion has no id")
    # Kept past the assertion's own expiry by the clock skew python3-saml allows, so it can never
    # be accepted again; an assertion without an expiry is kept for an hour.
    expires = (
        datetime.fromtimestamp(not_on_or_after, tz=UTC)
        if not_on_or_after
        else timezone.now() + timedelta(hours=1)
    ) + timedelta(minutes=5)
    try:
        with transaction.atomic():
            SamlAssertionUse.objects.filter(expires_at__lt=timezone.now()).delete()
            SamlAssertionUse.objects.create(provider=provider, assertion_id=assertion_id, expires_at=expires)
    except IntegrityError:
        raise SsoRefusedError("saml: replayed assertion") from None


def sso_user_resolve(
    *, provider: IdentityProvider, email: str, email_verified: bool, display_name: str
) -> User:
    """The account an SSO identity signs in to (first sign-in of this identity): an existing
    account of the provider's organisation with the same verified e-mail, or a new one with no
    role. Never an account of another organisation; never staff, never a superuser."""
    try:
        email = User.objects.normalize_email(email or "").strip().lower()
    except ValidationError:  # an invisible or control character: it would pass for another address
        raise SsoRefusedError("the e-mail address holds an invisible or control character") from None
    if not email or "@" not in email:
        raise SsoRefusedError("no e-mail address in the identity provider's answer")
    sso_domain_check(provider=provider, email=email)
    if not email_verified:
        raise SsoRefusedError(
            "the identity provider did not confirm the e-mail address", subject_message(email)
        )
    with audited_transaction():
        existing = User.objects.select_for_update().filter(email=email).first()
        if existing is not None:
            if existing.organization_id != provider.organization_id:
                raise SsoRefusedError(
                    "the e-mail address belongs to an account of another organisation", subject_message(email)
                )
            if user_holds_control_panel_role(existing):
                # An identity provider's word never opens the control panel: such an account
                # signs in with its password and its own second factor, never through a link.
                raise SsoRefusedError(
                    "the account holds a control-panel role and is never linked to an identity provider",
                    "This account holds a control-panel role and cannot sign in through single "
                    "sign-on. Sign in with your password and second factor.",
                )
            audit_event_record(
                action=AccountEvent.SSO_ACCOUNT_LINKED,
                actor=None,
                target=existing,
                organization_id=existing.organization_id,
                data={"provider": provider.slug, "email": email},
            )
            return existing
        user = User(email=email, display_name=display_name[:150], organization_id=provider.organization_id)
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        audit_event_record(
            action=AccountEvent.SSO_USER_PROVISIONED,
            actor=None,
            target=user,
            organization_id=provider.organization_id,
            data={"provider": provider.slug, "email": email, "display_name": user.display_name},
        )
    return user


def sso_domain_check(*, provider: IdentityProvider, email: str) -> None:
    """Refuse an identity whose e-mail domain the provider does not list (an empty list refuses
    every identity)."""
    domain = email_domain(email)
    if domain not in (provider.allowed_domains or []):
        raise SsoRefusedError(
            f"the e-mail domain {domain or '(none)'} is not allowed for this identity provider",
            f"Addresses in {domain or 'this domain'} cannot sign in through {provider.name}. "
            "Ask your administrator to add the domain to the identity provider's allowed domains.",
        )


def subject_message(email: str) -> str:
    return (
        f"The account for {email} cannot be signed in through this identity provider. Ask your administrator."
    )


def sso_memberships_apply(*, provider: IdentityProvider, user: User, groups: list[str]) -> dict[str, list]:
    """Give ``user`` the memberships the provider's group mappings name for ``groups`` and take
    away the mapped memberships no group names any more. Memberships given by hand stay."""
    wanted: dict[int, tuple] = {}
    for mapping in GroupRoleMapping.objects.filter(provider=provider, group__in=groups).select_related(
        "role", "workspace"
    ):
        # One role per workspace: when several groups map to the same workspace, the first in
        # the roles' own order (the more powerful first) wins.
        current = wanted.get(mapping.workspace_id)
        if current is None or mapping.role.position < current[1].position:
            wanted[mapping.workspace_id] = (mapping.workspace, mapping.role)
    changes: dict[str, list] = {"added": [], "removed": [], "changed": [], "kept_manual": []}
    with audited_transaction():
        linked = {
            link.membership.workspace_id: link.membership
            for link in SsoMembership.objects.select_related("membership").filter(
                membership__user=user, provider=provider
            )
        }
        for workspace_id, membership in linked.items():
            if workspace_id not in wanted:
                _membership_drop(membership, provider, changes)
            elif membership.role_id != wanted[workspace_id][1].pk:
                before = membership.role_id
                membership.role = wanted[workspace_id][1]
                membership.save(update_fields=["role"])
                _membership_event(
                    TenancyEvent.MEMBERSHIP_ROLE_CHANGED,
                    membership,
                    provider,
                    {"diff": {"role": {"before": before, "after": membership.role_id}}},
                )
                changes["changed"].append(f"{membership.workspace_id}:{membership.role_id}")
        for workspace_id, (workspace, role) in wanted.items():
            if workspace_id in linked:
                continue
            if Membership.objects.filter(user=user, workspace_id=workspace_id).exists():
                changes["kept_manual"].append(workspace.slug)  # a role given by hand is left alone
                continue
            membership = Membership.objects.create(
                user=user, organization_id=provider.organization_id, workspace=workspace, role=role
            )
            SsoMembership.objects.create(membership=membership, provider=provider)
            _membership_event(TenancyEvent.MEMBERSHIP_CREATED, membership, provider, {"role": role.pk})
            changes["added"].append(f"{workspace.slug}:{role.pk}")
    forget(user)
    return changes


def scim_memberships_apply(*, organization_id: int, users: list[User]) -> None:
    """After a SCIM group change: the group mappings of the organisation's enabled providers are
    applied at once from each user's SCIM groups (not at their next sign-in), so a user taken out
    of a group loses the mapped role immediately. Runs inside the SCIM service's transaction."""
    providers = list(
        IdentityProvider.objects.filter(
            organization_id=organization_id, enabled=True, group_mappings__isnull=False
        ).distinct()
    )
    for user in users if providers else []:
        groups = [] if user.deprovisioned_at is not None else scim_group_names(user)
        for provider in providers:
            sso_memberships_apply(provider=provider, user=user, groups=groups)


def _membership_drop(membership: Membership, provider: IdentityProvider, changes: dict) -> None:
    try:
        _guard_last_holder(membership)
    except ValidationError:
        changes["kept_manual"].append(f"{membership.workspace_id}: last owner kept")
        return
    _membership_event(TenancyEvent.MEMBERSHIP_REMOVED, membership, provider, {"role": membership.role_id})
    changes["removed"].append(f"{membership.workspace_id}:{membership.role_id}")
    membership.delete()


def _membership_event(action: str, membership: Membership, provider: IdentityProvider, data: dict) -> None:
    audit_event_record(
        action=action,
        actor=None,
        target=membership,
        organization_id=membership.organization_id,
        workspace_id=membership.workspace_id,
        data={
            "user": membership.user.email,
            "workspace": membership.workspace.slug,
            "via": f"sso:{provider.slug}",
            **data,
        },
    )


def sso_login_record(
    *,
    user: User,
    provider: IdentityProvider,
    session_ref: str,
    mfa_claim: str | None,
    memberships: dict[str, list],
) -> None:
    """Record a successful SSO sign-in: provider, whether the IdP's MFA claim was trusted, what
    the group mapping changed."""
    with transaction.atomic():
        audit_event_record(
            action=AccountEvent.SSO_LOGIN,
            actor=user,
            target=user,
            organization_id=user.organization_id,
            data={
                "provider": provider.slug,
                "kind": provider.kind,
                "session": session_ref,
                "mfa_via_idp": mfa_claim,
                "memberships": memberships,
            },
        )
