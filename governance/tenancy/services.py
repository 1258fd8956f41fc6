"""Every change to organisations, workspaces and memberships, each with its ledger event.

Each function checks the actor's permission again inside its transaction (the caller may
have checked earlier, but grants can change in between), validates, writes, and records the
event in the same transaction. Errors are ``ValidationError`` with field names, so forms and
the API show them at the field that is wrong.
"""

from __future__ import annotations

from datetime import time
from typing import Any

from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict

from audit.services import audit_event_record, audited_transaction, diff_fields
from governance.access.decision import forget, require
from governance.tenancy.events import TenancyEvent
from governance.tenancy.models import WORKSPACE_SETTINGS, Membership, Organization, Role, RoleScope, Workspace
from governance.tenancy.roles import PLATFORM_ADMIN, WORKSPACE_OWNER


def _snapshot(obj, fields) -> dict[str, Any]:
    return dict(model_to_dict(obj, fields=fields))


def organization_create(*, actor, name: str, slug: str) -> Organization:
    """Create an organisation. Only the system (a management command) does this: ``actor`` is None."""
    if actor is not None:
        raise ValidationError("Organisations are created from the command line by an operator.")
    with audited_transaction():
        organization = Organization(name=name, slug=slug)
        organization.full_clean()
        organization.save()
        audit_event_record(
            action=TenancyEvent.ORGANIZATION_CREATED,
            actor=None,
            target=organization,
            organization_id=organization.pk,
            data={"name": name, "slug": slug},
        )
    return organization


def workspace_create(
    *,
    actor,
    organization: Organization,
    name: str,
    slug: str,
    data_region: str,
    time_zone: str = "UTC",
    business_hours_start: time = time(9, 0),
    business_hours_end: time = time(18, 0),
    business_days: str = "12345",
) -> Workspace:
    """Create a workspace in ``organization`` (platform administrators; the system when actor is None)."""
    with audited_transaction():
        if actor is not None:
            require(actor, "workspace.create", organization, fresh=True)
        workspace = Workspace(
            organization=organization,
            name=name,
            slug=slug,
            data_region=data_region,
            time_zone=time_zone,
            business_hours_start=business_hours_start,
            business_hours_end=business_hours_end,
            business_days=business_days,
        )
        workspace.full_clean()
        workspace.save()
        audit_event_record(
            action=TenancyEvent.WORKSPACE_CREATED,
            actor=actor,
            target=workspace,
            organization_id=organization.pk,
            workspace_id=workspace.pk,
            data={"after": _snapshot(workspace, WORKSPACE_SETTINGS)},
        )
    return workspace


def workspace_update(*, actor, workspace: Workspace, **changes: Any) -> Workspace:
    """Change a workspace's settings; the event carries the field diff."""
    unknown = set(changes) - set(WORKSPACE_SETTINGS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed here."))
    with audited_transaction():
        workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
        require(actor, "workspace.manage", workspace, fresh=True)
        before = _snapshot(workspace, WORKSPACE_SETTINGS)
        for name, value in changes.items():
            setattr(workspace, name, value)
        workspace.full_clean()
        after = _snapshot(workspace, WORKSPACE_SETTINGS)
        diff = diff_fields(before, after)
        if diff:
            workspace.save(update_fields=list(diff))
            audit_event_record(
                action=TenancyEvent.WORKSPACE_UPDATED,
                actor=actor,
                target=workspace,
                organization_id=workspace.organization_id,
                workspace_id=workspace.pk,
                data={"diff": diff},
            )
    return workspace


def _role(role: Role | str) -> Role:
    if isinstance(role, Role):
        return role
    found = Role.objects.filter(pk=role).first()
    if found is None:
        known = ", ".join(Role.objects.values_list("code", flat=True))
        raise ValidationError({"role": f"Unknown role {role!r}. Known roles: {known}."})
    return found


def membership_validate(
    *,
    user,
    organization: Organization,
    workspace: Workspace | None,
    role: Role,
    exclude_pk: int | None = None,
) -> None:
    """Check a membership before it is written; raise field-level ``ValidationError``s."""
    errors: dict[str, str] = {}
    if user.organization_id != organization.pk:
        errors["user"] = "This user belongs to another organisation."
    if workspace is not None and workspace.organization_id != organization.pk:
        errors["workspace"] = "This workspace belongs to another organisation."
    if role.scope == RoleScope.WORKSPACE and workspace is None:
        errors["workspace"] = f"The role {role.name} is held in one workspace: choose the workspace."
    if role.scope == RoleScope.ORGANIZATION and workspace is not None:
        errors["workspace"] = f"The role {role.name} is organisation-wide: leave the workspace empty."
    if not errors:
        duplicates = Membership.objects.filter(user=user, organization=organization)
        if workspace is not None:
            duplicates = duplicates.filter(workspace=workspace)
        else:
            duplicates = duplicates.filter(workspace__isnull=True, role=role)
        if exclude_pk is not None:
            duplicates = duplicates.exclude(pk=exclude_pk)
        existing = duplicates.select_related("role").first()
        if existing is not None:
            errors["user"] = (
                f"{user} already holds the role {existing.role.name} here; change that membership instead."
            )
    if errors:
        raise ValidationError(errors)


# Roles that review or audit others: a workspace owner must not pick the people who approve or
# audit their own workspace's changes (segregation of duties), so only organisation-wide
# administrators give or take them.
OVERSIGHT_ROLES = {"compliance_officer", "auditor"}


def _require_manage(
    actor, *, organization: Organization, workspace: Workspace | None, roles: tuple[str, ...] = ()
) -> None:
    # Organisation-wide memberships are managed at the organisation (platform administrators);
    # workspace memberships by whoever may manage that workspace's members.
    oversight = bool(OVERSIGHT_ROLES.intersection(roles))
    target = organization if workspace is None or oversight else workspace
    require(actor, "membership.manage", target, fresh=True)


def _lock_scope(organization: Organization, workspace: Workspace | None) -> None:
    # Serialise membership changes of one workspace (or organisation), so that two concurrent
    # removals cannot both see "another owner remains" and leave none.
    if workspace is not None:
        Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
    else:
        Organization.objects.select_for_update().filter(pk=organization.pk).first()


def membership_create(
    *,
    actor,
    user,
    role: Role | str,
    workspace: Workspace | None = None,
    organization: Organization | None = None,
) -> Membership:
    """Give ``user`` a role in ``workspace`` (or an organisation-wide role when workspace is None)."""
    role = _role(role)
    if organization is None:
        if workspace is None:
            raise ValidationError(
                {"workspace": "Choose a workspace (or an organisation for organisation-wide roles)."}
            )
        organization = workspace.organization
    with audited_transaction():
        if actor is not None:
            _require_manage(actor, organization=organization, workspace=workspace, roles=(role.pk,))
        _lock_scope(organization, workspace)
        membership_validate(user=user, organization=organization, workspace=workspace, role=role)
        membership = Membership.objects.create(
            user=user, organization=organization, workspace=workspace, role=role
        )
        audit_event_record(
            action=TenancyEvent.MEMBERSHIP_CREATED,
            actor=actor,
            target=membership,
            organization_id=organization.pk,
            workspace_id=workspace.pk if workspace else None,
            data={"user": user.email, "role": role.code, "workspace": workspace.slug if workspace else None},
        )
    forget(user)
    return membership


def _holders_left(membership: Membership, role_code: str) -> int:
    others = (
        Membership.objects.holding(role_code)
        .filter(organization_id=membership.organization_id)
        .exclude(pk=membership.pk)
    )
    if membership.workspace_id is not None:
        others = others.filter(workspace_id=membership.workspace_id)
    else:
        others = others.filter(workspace__isnull=True)
    return others.count()


def _guard_last_holder(membership: Membership) -> None:
    if membership.role_id == WORKSPACE_OWNER and _holders_left(membership, WORKSPACE_OWNER) == 0:
        raise ValidationError({"role": "This is the workspace's last owner; add another owner first."})
    if membership.role_id == PLATFORM_ADMIN and _holders_left(membership, PLATFORM_ADMIN) == 0:
        raise ValidationError(
            {"role": "This is the organisation's last platform administrator; add another first."}
        )


def membership_change_role(*, actor, membership: Membership, role: Role | str) -> Membership:
    """Change the role of an existing membership (same workspace)."""
    role = _role(role)
    with audited_transaction():
        membership = Membership.objects.select_related("user", "workspace", "organization", "role").get(
            pk=membership.pk
        )
        _require_manage(
            actor,
            organization=membership.organization,
            workspace=membership.workspace,
            roles=(role.pk, membership.role_id),
        )
        _lock_scope(membership.organization, membership.workspace)
        if role.pk == membership.role_id:
            return membership
        membership_validate(
            user=membership.user,
            organization=membership.organization,
            workspace=membership.workspace,
            role=role,
            exclude_pk=membership.pk,
        )
        _guard_last_holder(membership)
        before = membership.role_id
        membership.role = role
        membership.save(update_fields=["role"])
        audit_event_record(
            action=TenancyEvent.MEMBERSHIP_ROLE_CHANGED,
            actor=actor,
            target=membership,
            organization_id=membership.organization_id,
            workspace_id=membership.workspace_id,
            data={"user": membership.user.email, "diff": {"role": {"before": before, "after": role.pk}}},
        )
    forget(membership.user)
    return membership


def membership_remove(*, actor, membership: Membership) -> None:
    """Remove a membership; the last owner of a workspace cannot be removed."""
    with audited_transaction():
        membership = Membership.objects.select_related("user", "workspace", "organization").get(
            pk=membership.pk
        )
        _require_manage(
            actor,
            organization=membership.organization,
            workspace=membership.workspace,
            roles=(membership.role_id,),
        )
        _lock_scope(membership.organization, membership.workspace)
        _guard_last_holder(membership)
        audit_event_record(
            action=TenancyEvent.MEMBERSHIP_REMOVED,
            actor=actor,
            target=membership,
            organization_id=membership.organization_id,
            workspace_id=membership.workspace_id,
            data={
                "user": membership.user.email,
                "role": membership.role_id,
                "workspace": membership.workspace.slug if membership.workspace else None,
            },
        )
        membership.delete()
    forget(membership.user)


def organization_update(*, actor, organization: Organization, name: str) -> Organization:
    """Rename an organisation (platform administrators)."""
    with audited_transaction():
        organization = Organization.objects.select_for_update().get(pk=organization.pk)
        require(actor, "organization.manage", organization, fresh=True)
        before = organization.name
        organization.name = name
        organization.full_clean()
        if before != name:
            organization.save(update_fields=["name"])
            audit_event_record(
                action=TenancyEvent.ORGANIZATION_UPDATED,
                actor=actor,
                target=organization,
                organization_id=organization.pk,
                data={"diff": {"name": {"before": before, "after": name}}},
            )
    return organization
