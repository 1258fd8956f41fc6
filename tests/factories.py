"""Test data builders. Rows are created directly for speed; tests of behaviour use the services."""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from accounts.models import User
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
    class Meta:
        model = AuditEvent

    category = "admin"
    action = "membership.created"
    actor_type = "system"
    actor_label = "system"
    data = factory.LazyFunction(dict)
