"""Organisations, workspaces, roles and memberships: who belongs where, with which role."""

from __future__ import annotations

import zoneinfo
from datetime import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from guardian.models import UserObjectPermissionBase

from governance.core.regions import DataRegion


def validate_time_zone(value: str) -> None:
    """Accept IANA time-zone names only (Europe/Berlin, America/New_York, UTC)."""
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone; use an IANA name such as Europe/Berlin.")


def validate_business_days(value: str) -> None:
    """Accept ISO weekday digits 1 (Monday) to 7 (Sunday), each at most once, e.g. 12345."""
    if not value or any(day not in "1234567" for day in value) or len(set(value)) != len(value):
        raise ValidationError("Business days are ISO weekday digits, each once: 12345 is Monday to Friday.")


class Organization(models.Model):
    """A customer: owns its workspaces and its users. Nothing is shared across organisations."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# The settings of a workspace that people edit (form, API, services and their ledger diffs).
WORKSPACE_SETTINGS = (
    "name",
    "slug",
    "data_region",
    "time_zone",
    "business_hours_start",
    "business_hours_end",
    "business_days",
)


class Workspace(models.Model):
    """A team's area: its workflows, integrations, members and audit scope.

    Its data region decides where workflow data may be processed; its time zone and business
    hours feed the attribute policies (e.g. production changes only in business hours).
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="workspaces")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60)
    data_region = models.CharField(max_length=8, choices=DataRegion.choices)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    business_hours_start = models.TimeField(default=time(9, 0))
    business_hours_end = models.TimeField(default=time(18, 0))
    business_days = models.CharField(max_length=7, default="12345", validators=[validate_business_days])
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["organization__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="tenancy_workspace_slug_unique"),
            models.CheckConstraint(
                condition=models.Q(business_hours_start__lt=models.F("business_hours_end")),
                name="tenancy_workspace_business_hours_order",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if (
            self.business_hours_start is not None
            and self.business_hours_end is not None
            and self.business_hours_start >= self.business_hours_end
        ):
            raise ValidationError({"business_hours_end": "Business hours must end after they start."})


class RoleScope(models.TextChoices):
    ORGANIZATION = "organization", "Organisation-wide"
    WORKSPACE = "workspace", "One workspace"


class Role(models.Model):
    """One of the seven roles. What it may do is its ``permissions`` rows, filled by migrations."""

    code = models.SlugField(max_length=40, primary_key=True)
    name = models.CharField(max_length=80)
    description = models.TextField(blank=True)
    scope = models.CharField(max_length=16, choices=RoleScope.choices)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.name


class RolePermission(models.Model):
    """Role ``role`` may perform ``action`` (a code from governance.access.actions)."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="permissions")
    action = models.CharField(max_length=64)

    class Meta:
        ordering = ["role", "action"]
        constraints = [models.UniqueConstraint(fields=["role", "action"], name="tenancy_role_action_unique")]

    def __str__(self) -> str:
        return f"{self.role_id}: {self.action}"


class MembershipQuerySet(models.QuerySet):
    """Questions asked of memberships in many places, answered once."""

    def holding(self, role_code: str) -> MembershipQuerySet:
        """Memberships that give ``role_code`` to an active account."""
        return self.filter(role_id=role_code, user__is_active=True)

    def emails(self) -> list[str]:
        """The members' e-mail addresses, each once, sorted."""
        return sorted(set(self.values_list("user__email", flat=True)))


class Membership(models.Model):
    """A user's role in one workspace, or an organisation-wide role (no workspace).

    A user holds at most one role per workspace and each organisation-wide role once.
    Workspace-scoped roles need a workspace; organisation-wide roles must not have one
    (checked by the services, which are the only writers).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="memberships")
    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="memberships", null=True, blank=True
    )
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="memberships")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["organization", "workspace", "user"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "workspace"],
                condition=models.Q(workspace__isnull=False),
                name="tenancy_membership_one_role_per_workspace",
            ),
            models.UniqueConstraint(
                fields=["user", "organization", "role"],
                condition=models.Q(workspace__isnull=True),
                name="tenancy_membership_org_role_once",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "role"], name="tenancy_membership_ws_role")]

    def __str__(self) -> str:
        where = self.workspace if self.workspace_id else self.organization
        return f"{self.user} — {self.role} in {where}"


class WorkspaceUserGrant(UserObjectPermissionBase):
    """A per-object permission of one user on one workspace (django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="user_grants")

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False
        verbose_name = "workspace grant"
