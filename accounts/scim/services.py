"""Applying an identity provider's SCIM changes. Each function is one use case with its ledger
event (``scim.*``) in the same transaction as the change; the account services it builds on
(``user_create``, ``user_update``, ``user_set_active``) write their own events alongside.

The actor is the token's ``ScimPrincipal``; the decision point confines it to its organisation.
Deactivation goes through ``user_set_active``, which ends every session and revokes every API
token of the person at once.

What a token may touch (docs/identity.md, "SCIM scope"): accounts of its own organisation only
(every other account is unknown to it), never an account that holds a control-panel role, never
an address in a domain another organisation's identity provider lists (nor one another
organisation's account has), and it reactivates only accounts it
deactivated itself. Each refusal is a SCIM 403 recorded as ``scim.change_refused``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.events import AccountEvent
from accounts.models import DeactivatedBy, ScimGroup, User
from accounts.scim.principal import ScimPrincipal
from accounts.scim.protocol import PatchOperation, ScimError, as_string, invalid, member_filter_value
from accounts.scim.resources import member_ids
from accounts.selectors import (
    domain_claimed_elsewhere,
    email_domain,
    organization_domains,
    user_holds_control_panel_role,
)
from accounts.services import user_create, user_set_active, user_update
from accounts.sso.services import scim_memberships_apply
from audit.models import Outcome
from audit.services import audit_event_record, audited_transaction
from governance.access.decision import require
from governance.tenancy.models import Organization


class ScimChangeRefusedError(ScimError):
    """A change this token may not make (403); ``reason`` goes to the ledger with the attempt."""

    def __init__(self, detail: str, *, reason: str, target: User | None = None, **data) -> None:
        super().__init__(403, detail)
        self.reason, self.target, self.data = reason, target, data


DOMAIN_REFUSED = (
    "This organisation may not provision this address. An e-mail domain belongs to the "
    "organisation whose identity providers list it."
)


def _refusal_record(actor: ScimPrincipal, refusal: ScimChangeRefusedError) -> None:
    """Record a refused SCIM change (after its transaction was rolled back): ``scim.change_refused``."""
    with transaction.atomic():
        audit_event_record(
            action=AccountEvent.SCIM_CHANGE_REFUSED,
            actor=actor,
            target=refusal.target,
            outcome=Outcome.DENIED,
            organization_id=actor.organization_id,
            data={"token_prefix": actor.token_prefix, "reason": refusal.reason, **refusal.data},
        )


def _address_allowed(actor: ScimPrincipal, email: str, *, user: User | None = None) -> None:
    """Refuse an address in a domain another organisation holds, or — when this organisation's
    identity providers list domains — outside them. The same refusal whether or not the address
    itself exists elsewhere: a token learns nothing about another organisation's accounts."""
    domain = email_domain(email)
    own = organization_domains(actor.organization_id)
    if domain_claimed_elsewhere(domain, actor.organization_id) or (own and domain not in own):
        raise ScimChangeRefusedError(DOMAIN_REFUSED, reason="domain not held", target=user, domain=domain)


def _differs(user: User, field: str, value: Any) -> bool:
    """Whether ``value`` changes ``field`` of ``user``. An address is compared case-insensitively
    (casefolded): user names are unique whatever their case, so a userName differing in case only
    is the same account's, and no change — neither refused nor applied. The refusal of changes to
    control-panel accounts and the change itself ask this one question, so they cannot disagree."""
    current = user.is_active if field == "active" else getattr(user, field)
    if field == "email" and isinstance(value, str) and isinstance(current, str):
        return value.casefold() != current.casefold()
    return value != current


def _guard_changes(actor: ScimPrincipal, user: User, changes: dict[str, Any]) -> None:
    """Refuse what this token may not change on ``user``: anything but ``externalId`` of an account
    holding a control-panel role; reactivating an account it did not deactivate; a new address
    outside its domains."""
    wanted = {
        field
        for field in ("email", "display_name", "department", "active")
        if field in changes and _differs(user, field, changes[field])
    }
    if wanted and user_holds_control_panel_role(user):
        raise ScimChangeRefusedError(
            "This account holds a control-panel role; only an administrator changes it, in the "
            "control panel.",
            reason="control-panel account",
            target=user,
            fields=sorted(wanted),
        )
    if "active" in wanted and changes["active"] and user.deactivated_by != DeactivatedBy.PROVISIONING:
        raise ScimChangeRefusedError(
            "This account was deactivated by an administrator; only an administrator reactivates it.",
            reason="deactivated by an administrator",
            target=user,
            deactivated_by=user.deactivated_by,
        )
    if "email" in wanted:
        _address_allowed(actor, changes["email"], user=user)


def _conflict_or_invalid(error: ValidationError) -> ScimError:
    messages = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
    if "email" in messages and any("exists already" in message for message in messages["email"]):
        return ScimError(409, "An account with this userName exists already.", "uniqueness")
    field, texts = next(iter(messages.items()))
    return invalid(f"{field + ': ' if field else ''}{' '.join(texts)}")


def _event(action: str, *, actor: ScimPrincipal, target, **data) -> None:
    audit_event_record(
        action=action,
        actor=actor,
        target=target,
        organization_id=actor.organization_id,
        data={"token_prefix": actor.token_prefix, **data},
    )


def _apply_user(actor: ScimPrincipal, user: User, changes: dict[str, Any]) -> tuple[User, list[str], bool]:
    """Apply profile, externalId and active changes; return the user, what changed, and whether
    this deactivated the account."""
    changed: list[str] = []
    profile = {}
    for field in ("email", "display_name", "department"):
        if field in changes and _differs(user, field, changes[field]):
            profile[field] = changes[field]
    if profile:
        user = user_update(actor=actor, user=user, **profile)
        changed.extend(sorted(profile))
    if "external_id" in changes and changes["external_id"] != user.scim_external_id:
        user.scim_external_id = changes["external_id"]
        user.save(update_fields=["scim_external_id"])
        changed.append("external_id")
    deactivated = False
    if "active" in changes and changes["active"] != user.is_active:
        user = user_set_active(actor=actor, user=user, active=changes["active"])
        changed.append("active")
        deactivated = not changes["active"]
    return user, changed, deactivated


def scim_user_create(*, actor: ScimPrincipal, changes: dict[str, Any]) -> User:
    """Create an account in the token's organisation: no password (it signs in through the
    identity provider) and no role (roles are given in the portal, never by provisioning)."""
    try:
        with audited_transaction():
            organization = Organization.objects.get(pk=actor.organization_id)
            require(actor, "user.manage", organization, fresh=True)
            _address_allowed(actor, changes["email"])
            gone = User.objects.filter(
                organization=organization, email__iexact=changes["email"], deprovisioned_at__isnull=False
            )
            if gone.exists():
                # Not revived silently: the old account would bring its old roles back.
                raise ScimError(
                    409,
                    "This userName belongs to a deprovisioned account; a platform "
                    "administrator can reactivate it in the control panel.",
                    "uniqueness",
                )
            user = user_create(
                actor=actor,
                organization=organization,
                email=changes["email"],
                display_name=changes.get("display_name", ""),
            )
            create_changes = {
                key: value for key, value in changes.items() if key in ("department", "external_id", "active")
            }
            user, _, _ = _apply_user(actor, user, create_changes)
            _event(
                AccountEvent.SCIM_USER_CREATED,
                actor=actor,
                target=user,
                email=user.email,
                external_id=user.scim_external_id,
                active=user.is_active,
            )
    except ScimChangeRefusedError as refusal:
        _refusal_record(actor, refusal)
        raise
    except (ValidationError, IntegrityError) as error:
        raise _collision(actor, changes["email"], error) from None
    return user


def _collision(actor: ScimPrincipal, email: str, error: Exception) -> ScimError:
    """A failed write: 409 when the address is taken in the token's own organisation; when an
    account of another organisation holds it (in a domain no provider claims, or a race past the
    domain check), the domain refusal's fixed 403, recorded, never "exists already"; otherwise
    the field error."""
    taken = User.objects.filter(email__iexact=(email or "").strip()).values_list("organization_id", flat=True)
    owner = taken.first()
    if owner is not None and owner != actor.organization_id:
        refusal = ScimChangeRefusedError(
            DOMAIN_REFUSED, reason="address of another organisation", domain=email_domain(email)
        )
        _refusal_record(actor, refusal)
        return refusal
    if isinstance(error, ValidationError):
        return _conflict_or_invalid(error)
    return ScimError(409, "An account with this userName exists already.", "uniqueness")


def _locked_user(actor: ScimPrincipal, user: User) -> User:
    user = User.objects.select_for_update(of=("self",)).get(pk=user.pk)
    require(actor, "user.manage", user, fresh=True)
    if user.deprovisioned_at is not None:
        raise ScimError(404, "No such user.")
    return user


def scim_user_replace(*, actor: ScimPrincipal, user: User, changes: dict[str, Any]) -> User:
    """PUT: the document replaces the account's SCIM attributes (absent ones become empty)."""
    try:
        with audited_transaction():
            user = _locked_user(actor, user)
            _guard_changes(actor, user, changes)
            user, changed, deactivated = _apply_user(actor, user, changes)
            _event(AccountEvent.SCIM_USER_REPLACED, actor=actor, target=user, changed=changed)
            if deactivated:
                _event(AccountEvent.SCIM_USER_DEACTIVATED, actor=actor, target=user, via="PUT")
    except ScimChangeRefusedError as refusal:
        _refusal_record(actor, refusal)
        raise
    except (ValidationError, IntegrityError) as error:
        raise _collision(actor, changes.get("email", ""), error) from None
    return user


def scim_user_patch(
    *, actor: ScimPrincipal, user: User, changes: dict[str, Any], operations: list[dict]
) -> User:
    """PATCH: apply the operations' changes; ``active`` false cuts the person off at once."""
    try:
        with audited_transaction():
            user = _locked_user(actor, user)
            _guard_changes(actor, user, changes)
            user, changed, deactivated = _apply_user(actor, user, changes)
            _event(
                AccountEvent.SCIM_USER_PATCHED,
                actor=actor,
                target=user,
                operations=operations,
                changed=changed,
            )
            if deactivated:
                _event(AccountEvent.SCIM_USER_DEACTIVATED, actor=actor, target=user, via="PATCH")
    except ScimChangeRefusedError as refusal:
        _refusal_record(actor, refusal)
        raise
    except (ValidationError, IntegrityError) as error:
        raise _collision(actor, changes.get("email", ""), error) from None
    return user


def scim_user_delete(*, actor: ScimPrincipal, user: User) -> User:
    """DELETE: deactivate (every session ends, every API token is revoked) and mark the account
    deprovisioned. The row stays, because the ledger and approvals name it; SCIM no longer shows it.
    An account holding a control-panel role is refused (403): an administrator removes it."""
    try:
        with audited_transaction():
            user = _locked_user(actor, user)
            if user_holds_control_panel_role(user):
                raise ScimChangeRefusedError(
                    "This account holds a control-panel role; only an administrator removes it, in "
                    "the control panel.",
                    reason="control-panel account",
                    target=user,
                    fields=["deleted"],
                )
            return _deprovision(actor, user)
    except ScimChangeRefusedError as refusal:
        _refusal_record(actor, refusal)
        raise


def _deprovision(actor: ScimPrincipal, user: User) -> User:
    """Deactivate, mark deprovisioned, drop SCIM group memberships (inside the caller's transaction)."""
    was_active = user.is_active
    if was_active:
        user = user_set_active(actor=actor, user=user, active=False)
    user.deprovisioned_at = timezone.now()
    user.save(update_fields=["deprovisioned_at"])
    memberships = ScimGroup.members.through.objects.filter(user_id=user.pk)
    groups_left = sorted(memberships.values_list("scimgroup_id", flat=True))
    memberships.delete()
    _roles_follow_groups(actor, [user])
    _event(
        AccountEvent.SCIM_USER_DELETED,
        actor=actor,
        target=user,
        deactivated=was_active,
        kept_as="deactivated and deprovisioned",
        groups_left=groups_left,
    )
    return user


def _roles_follow_groups(actor: ScimPrincipal, users: list[User]) -> None:
    """Apply the organisation's IdP-group → role mappings from these users' SCIM groups now."""
    unique = {user.pk: user for user in users}
    scim_memberships_apply(organization_id=actor.organization_id, users=list(unique.values()))


# --- Groups ---------------------------------------------------------------------------------------


def _members(actor: ScimPrincipal, ids: list[str]) -> list[User]:
    """The users named by ``ids``: each must be a provisioned account of the token's organisation."""
    wanted = set()
    for value in ids:
        if not value.isdigit() or len(value) > 18:
            raise invalid(f"No user with id '{value[:40]}'.")
        wanted.add(int(value))
    users = list(
        User.objects.filter(
            pk__in=wanted, organization_id=actor.organization_id, deprovisioned_at__isnull=True
        )
    )
    missing = wanted - {user.pk for user in users}
    if missing:
        raise invalid(f"No user with id '{min(missing)}'.")
    return users


def _ids(users) -> list[int]:
    return sorted(user.pk for user in users)


def _group_saved(group: ScimGroup) -> None:
    group.updated_at = timezone.now()
    try:
        group.full_clean(exclude=["organization", "members"])
        group.save()
    except ValidationError as error:
        raise _conflict_or_invalid(error) from None


def _name_taken(actor: ScimPrincipal, name: str, *, exclude: int | None = None) -> None:
    taken = ScimGroup.objects.filter(organization_id=actor.organization_id, display_name__iexact=name)
    if taken.exclude(pk=exclude).exists():
        raise ScimError(409, "A group with this displayName exists already.", "uniqueness")


def scim_group_create(*, actor: ScimPrincipal, changes: dict[str, Any]) -> ScimGroup:
    with audited_transaction():
        organization = Organization.objects.select_for_update().get(pk=actor.organization_id)
        require(actor, "user.manage", organization, fresh=True)
        _name_taken(actor, changes["display_name"])
        group = ScimGroup(
            organization=organization,
            display_name=changes["display_name"],
            external_id=changes["external_id"],
        )
        _group_saved(group)
        members = _members(actor, changes["members"])
        group.members.set(members)
        _roles_follow_groups(actor, members)
        _event(
            AccountEvent.SCIM_GROUP_CREATED,
            actor=actor,
            target=group,
            display_name=group.display_name,
            external_id=group.external_id,
            members=_ids(members),
        )
    return group


def _locked_group(actor: ScimPrincipal, group: ScimGroup) -> ScimGroup:
    # The organisation row serialises name checks, so two creations cannot take one name.
    Organization.objects.select_for_update().get(pk=actor.organization_id)
    group = ScimGroup.objects.select_for_update().get(pk=group.pk)
    require(actor, "user.manage", group, fresh=True)
    return group


def scim_group_replace(*, actor: ScimPrincipal, group: ScimGroup, changes: dict[str, Any]) -> ScimGroup:
    with audited_transaction():
        group = _locked_group(actor, group)
        _name_taken(actor, changes["display_name"], exclude=group.pk)
        before = {
            "display_name": group.display_name,
            "external_id": group.external_id,
            "members": _ids(group.members.all()),
        }
        group.display_name, group.external_id = changes["display_name"], changes["external_id"]
        _group_saved(group)
        before_members = list(group.members.all())
        members = _members(actor, changes["members"])
        group.members.set(members)
        _roles_follow_groups(actor, [*before_members, *members])
        _event(
            AccountEvent.SCIM_GROUP_REPLACED,
            actor=actor,
            target=group,
            before=before,
            after={
                "display_name": group.display_name,
                "external_id": group.external_id,
                "members": _ids(members),
            },
        )
    return group


def scim_group_patch(
    *, actor: ScimPrincipal, group: ScimGroup, operations: list[PatchOperation]
) -> ScimGroup:
    """PATCH: add, remove or replace members (by ``members`` with a value list, or Okta's
    ``members[value eq "<id>"]``), replace ``displayName`` or ``externalId``."""
    with audited_transaction():
        group = _locked_group(actor, group)
        added: set[int] = set()
        removed: set[int] = set()
        renamed = {}
        for operation in operations:
            path = operation.path.lower()
            if path == "members" or (not path and operation.op == "remove"):
                # A remove without a value removes every member; add and replace need members.
                bare_remove = operation.op == "remove" and operation.value is None
                users = None if bare_remove else _members(actor, member_ids(operation.value))
                if operation.op == "add":
                    group.members.add(*users)
                    added |= set(_ids(users))
                elif operation.op == "remove":
                    gone = users if users is not None else list(group.members.all())
                    group.members.remove(*gone)
                    removed |= set(_ids(gone))
                else:
                    removed |= set(_ids(group.members.all())) - set(_ids(users))
                    added |= set(_ids(users))
                    group.members.set(users)
            elif member_filter_value(operation.path) is not None and operation.op == "remove":
                users = _members(actor, [member_filter_value(operation.path)])
                group.members.remove(*users)
                removed |= set(_ids(users))
            elif operation.op in ("add", "replace"):
                values = {path: operation.value} if path else operation.value
                for key, value in values.items():
                    name = key.lower()
                    if name == "displayname":
                        renamed["display_name"] = as_string(value, "displayName", required=True)
                    elif name == "externalid":
                        renamed["external_id"] = as_string(value, "externalId")
                    elif name == "members":
                        users = _members(actor, member_ids(value))
                        group.members.add(*users)
                        added |= set(_ids(users))
                    elif name == "id" and str(value) == str(group.pk):
                        continue
                    else:
                        raise ScimError(400, f"The attribute '{key[:100]}' is not supported.", "invalidPath")
            elif path == "externalid":
                renamed["external_id"] = ""
            else:
                raise ScimError(400, f"'{operation.path[:100]}' cannot be removed.", "invalidPath")
        if "display_name" in renamed:
            _name_taken(actor, renamed["display_name"], exclude=group.pk)
        for field, value in renamed.items():
            setattr(group, field, value)
        _group_saved(group)
        # A renamed group may match other mappings: every member's roles follow.
        touched = set(group.members.values_list("pk", flat=True)) if renamed else added | removed
        _roles_follow_groups(actor, list(User.objects.filter(pk__in=touched | removed)))
        _event(
            AccountEvent.SCIM_GROUP_PATCHED,
            actor=actor,
            target=group,
            added=sorted(added - removed),
            removed=sorted(removed - added),
            **renamed,
        )
    return group


def scim_group_delete(*, actor: ScimPrincipal, group: ScimGroup) -> None:
    """DELETE: the group and its memberships go (a group owns nothing the ledger refers to)."""
    with audited_transaction():
        group = _locked_group(actor, group)
        _event(
            AccountEvent.SCIM_GROUP_DELETED,
            actor=actor,
            target=group,
            display_name=group.display_name,
            external_id=group.external_id,
            members=_ids(group.members.all()),
        )
        members = list(group.members.all())
        group.members.clear()
        group.delete()
        _roles_follow_groups(actor, members)
