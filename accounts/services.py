"""Creating and changing user accounts, each with its ledger event."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from knox.models import AuthToken

from accounts.events import AccountEvent
from accounts.models import DeactivatedBy, SessionEnd, TokenRevocation, User
from accounts.sessions import user_sessions_end_all
from audit.services import audit_event_record, audited_transaction, diff_fields
from governance.access.decision import require
from governance.tenancy.models import Organization

USER_FIELDS = ("email", "display_name", "region", "department", "manager", "security_training_expires_on")


def user_create(
    *, actor, organization: Organization, email: str, display_name: str = "", password: str | None = None
) -> User:
    """Create an account in ``organization``. ``actor`` None means the system (a command)."""
    with audited_transaction():
        if actor is not None:
            require(actor, "user.manage", organization, fresh=True)
        email = User.objects.normalize_email(email).strip().lower()
        if User.objects.filter(email=email).exists():
            raise ValidationError({"email": "An account with this e-mail address exists already."})
        user = User(email=email, display_name=display_name, organization=organization)
        if password:
            validate_password(password, user)
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        audit_event_record(
            action=AccountEvent.USER_CREATED,
            actor=actor,
            target=user,
            organization_id=organization.pk,
            data={"email": email, "display_name": display_name},
        )
    return user


def _profile(user: User) -> dict:
    return {
        "email": user.email,
        "display_name": user.display_name,
        "region": user.region,
        "department": user.department,
        "manager": user.manager.email if user.manager_id else None,
        "security_training_expires_on": user.security_training_expires_on,
    }


def user_update(*, actor, user: User, **changes) -> User:
    """Change an account's profile (e-mail, display name and the attributes policies read:
    region, department, manager, security training expiry); the event carries the diff."""
    unknown = set(changes) - set(USER_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed here."))
    with audited_transaction():
        user = User.objects.select_for_update(of=("self",)).select_related("manager").get(pk=user.pk)
        if actor is not None:  # None: the system (a management command)
            require(actor, "user.manage", user, fresh=True)
        before = _profile(user)
        if changes.get("email") is not None:
            email = User.objects.normalize_email(changes.pop("email")).strip().lower()
            if User.objects.filter(email=email).exclude(pk=user.pk).exists():
                raise ValidationError({"email": "An account with this e-mail address exists already."})
            user.email = email
        manager = changes.pop("manager", user.manager)
        if manager is not None and (manager.pk == user.pk or manager.organization_id != user.organization_id):
            raise ValidationError({"manager": "Choose another person of the same organisation."})
        user.manager = manager
        for name, value in changes.items():
            if value is not None:
                setattr(user, name, value)
        user.full_clean(exclude=["password"])
        diff = diff_fields(before, _profile(user))
        if diff:
            user.save()
            audit_event_record(
                action=AccountEvent.USER_UPDATED,
                actor=actor,
                target=user,
                organization_id=user.organization_id,
                data={"diff": diff},
            )
    return user


def user_password_set(*, actor, user: User, password: str) -> User:
    """Set a password (the system when ``actor`` is None, e.g. seed_demo --reset-passwords).
    The event says that it changed, never what it is."""
    with audited_transaction():
        user = User.objects.select_for_update().get(pk=user.pk)
        if actor is not None:
            require(actor, "user.manage", user, fresh=True)
        validate_password(password, user)
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_event_record(
            action=AccountEvent.USER_PASSWORD_SET,
            actor=actor,
            target=user,
            organization_id=user.organization_id,
        )
        api_tokens_revoke_all(actor=actor, user=user, reason=TokenRevocation.PASSWORD_SET)
    return user


def user_set_active(*, actor, user: User, active: bool) -> User:
    """Deactivate (or reactivate) an account. A deactivated user is denied everything."""
    with audited_transaction():
        user = User.objects.select_for_update().get(pk=user.pk)
        require(actor, "user.manage", user, fresh=True)
        # A machine principal's pk is not a user's: only a person can be deactivating themself.
        is_person = actor is not None and not getattr(actor, "is_service_account", False)
        if is_person and actor.pk == user.pk and not active:
            raise ValidationError({"is_active": "You cannot deactivate your own account."})
        if user.is_active == active:
            return user
        user.is_active = active
        user.deactivated_by = "" if active else _deactivated_by(actor)
        fields = ["is_active", "deactivated_by"]
        if active and user.deprovisioned_at is not None:
            # Reactivated by hand: the account is back under SCIM provisioning too.
            user.deprovisioned_at = None
            fields.append("deprovisioned_at")
        user.save(update_fields=fields)
        audit_event_record(
            action=AccountEvent.USER_REACTIVATED if active else AccountEvent.USER_DEACTIVATED,
            actor=actor,
            target=user,
            organization_id=user.organization_id,
            data={} if active else {"deactivated_by": user.deactivated_by},
        )
        if not active:
            # Cut off at once: every session ends and every API token is revoked.
            user_sessions_end_all(actor=actor, user=user, reason=SessionEnd.DEACTIVATED)
    return user


def _deactivated_by(actor) -> str:
    if actor is None:
        return DeactivatedBy.SYSTEM
    if getattr(actor, "is_scim", False):
        return DeactivatedBy.PROVISIONING
    return DeactivatedBy.ADMINISTRATOR


def api_token_create(*, actor, user: User, hours: int | None = 24) -> str:
    """Issue an API token for ``user``; only its digest is stored, the token is returned once."""
    with audited_transaction():
        if actor is not None and actor.pk != user.pk:
            require(actor, "user.manage", user, fresh=True)
        expiry = timedelta(hours=hours) if hours else None
        instance, token = AuthToken.objects.create(user=user, expiry=expiry)
        audit_event_record(
            action=AccountEvent.API_TOKEN_CREATED,
            actor=actor,
            target=user,
            organization_id=user.organization_id,
            data={"token_digest_prefix": instance.digest[:16], "expires": instance.expiry},
        )
    return token


def api_tokens_revoke_all(*, actor, user: User, reason: str) -> int:
    """Revoke every API token of ``user`` at once (after a password change or reset: a token must
    not outlive the secret it was issued under). Recorded as ``api_token.revoked`` even when there
    was none, so the ledger shows the rule applied. ``actor`` is the person (None: the system)."""
    with audited_transaction():
        user = User.objects.select_for_update().get(pk=user.pk)
        if actor is not None and actor.pk != user.pk:
            require(actor, "user.manage", user, fresh=True)
        prefixes = sorted(AuthToken.objects.filter(user=user).values_list("token_key", flat=True))
        revoked, _ = AuthToken.objects.filter(user=user).delete()
        audit_event_record(
            action=AccountEvent.API_TOKEN_REVOKED,
            actor=actor,
            target=user,
            organization_id=user.organization_id,
            data={"reason": reason, "revoked": revoked, "token_keys": prefixes},
        )
    return revoked


def api_token_revoke(*, actor, user: User, token_key: str) -> bool:
    """Revoke one API token of ``user`` by its public key prefix (its owner, or ``user.manage``)."""
    with audited_transaction():
        if actor is None or actor.pk != user.pk:
            require(actor, "user.manage", user, fresh=True)
        revoked, _ = AuthToken.objects.filter(user=user, token_key=token_key).delete()
        if revoked:
            audit_event_record(
                action=AccountEvent.API_TOKEN_REVOKED,
                actor=actor,
                target=user,
                organization_id=user.organization_id,
                data={"reason": TokenRevocation.BY_OWNER, "revoked": revoked, "token_keys": [token_key]},
            )
    return bool(revoked)
