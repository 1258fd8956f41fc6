"""Test data builders. Rows are created directly for speed; tests of behaviour use the services."""

from __future__ import annotations

import uuid

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import User
from audit.canonical import CONTENT_COLUMNS, canonical_bytes
from audit.models import AuditEvent
from governance.tenancy.models import Membership, Organization, Role, Workspace


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organisation {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class WorkspaceFactory(DjangoModelFactory):
    class Meta:
        model = Workspace

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"ws-{n}")
    data_region = "EU"
    time_zone = "Europe/Berlin"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    display_name = factory.Sequence(lambda n: f"User {n}")
    organization = factory.SubFactory(OrganizationFactory)
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy hook signature
        if create:
            obj.save()


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    workspace = factory.SubFactory(WorkspaceFactory)
    organization = factory.LazyAttribute(
        lambda m: m.workspace.organization if m.workspace else m.user.organization
    )
    role = factory.LazyFunction(lambda: Role.objects.get(pk="viewer"))


class AuditEventFactory(DjangoModelFactory):
    """A ledger event with its canonical bytes, written directly (unsealed)."""

    class Meta:
        model = AuditEvent

    uid = factory.LazyFunction(uuid.uuid4)
    occurred_at = factory.LazyFunction(timezone.now)
    category = "admin"
    action = "membership.created"
    outcome = "success"
    actor_type = "system"
    actor_id = None
    actor_label = "system"
    organization_id = factory.LazyAttribute(lambda e: e.workspace.organization_id if e.workspace else None)
    workspace = None
    target_type = ""
    target_id = ""
    target_label = ""
    request_id = ""
    ip = None
    user_agent = ""
    data = factory.LazyFunction(dict)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        values = {name: kwargs.get(name) for name in CONTENT_COLUMNS if name != "workspace_id"}
        workspace = kwargs.get("workspace")
        values["workspace_id"] = workspace.pk if workspace else kwargs.get("workspace_id")
        kwargs["canonical"] = canonical_bytes(values)
        return super()._create(model_class, *args, **kwargs)


def make_events(count: int, *, workspace=None, action: str = "membership.created") -> list[AuditEvent]:
    """Insert ``count`` unsealed events in one statement."""
    rows = []
    for _ in range(count):
        values = {
            "uid": uuid.uuid4(), "occurred_at": timezone.now(), "category": "admin", "action": action,
            "outcome": "success", "actor_type": "system", "actor_id": None, "actor_label": "system",
            "organization_id": workspace.organization_id if workspace else None,
            "workspace_id": workspace.pk if workspace else None, "target_type": "", "target_id": "",
            "target_label": "", "request_id": "", "ip": None, "user_agent": "", "data": {},
        }  # fmt: skip
        rows.append(AuditEvent(canonical=canonical_bytes(values), **values))
    return AuditEvent.objects.bulk_create(rows)
