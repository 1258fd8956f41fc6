"""Creating and changing user accounts, each with its ledger event."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from knox.models import AuthToken

from accounts.events import AccountEvent
from accounts.models import SessionEnd, User
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
        fields = ["is_active"]
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
        )
        if not active:
            # Cut off at once: every session ends and every API token is revoked.
            user_sessions_end_all(actor=actor, user=user, reason=SessionEnd.DEACTIVATED)
    return user


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
