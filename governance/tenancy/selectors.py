"""Reads of tenancy data, always through the decision point's visible-to filter."""

from __future__ import annotations

from django.db.models import QuerySet

from governance.access.queries import restrict
from governance.tenancy.models import Membership, Organization, Role, Workspace


def workspaces_visible_to(actor) -> QuerySet[Workspace]:
    """Workspaces the actor may see."""
    return restrict(Workspace.objects.select_related("organization"), actor, "workspace.view")


def workspaces_manageable_by(actor) -> QuerySet[Workspace]:
    """Workspaces whose members the actor may add, change and remove."""
    return restrict(Workspace.objects.select_related("organization"), actor, "membership.manage")


def memberships_visible_to(actor) -> QuerySet[Membership]:
    """Memberships the actor may see, with user, role and workspace joined in."""
    return restrict(
        Membership.objects.select_related("user", "role", "workspace", "organization"),
        actor,
        "membership.view",
    )


def organizations_visible_to(actor) -> QuerySet[Organization]:
    return restrict(Organization.objects.all(), actor, "organization.view")


def roles_for_workspaces() -> QuerySet[Role]:
    """Roles that are held in one workspace (every role but the organisation-wide ones)."""
    return Role.objects.filter(scope="workspace")


def my_memberships(user) -> QuerySet[Membership]:
    """The user's own memberships (for their home page)."""
    return Membership.objects.filter(user_id=user.pk).select_related("workspace", "role", "organization")
