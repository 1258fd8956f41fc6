"""Create (or promote) a platform administrator of an organisation, creating the organisation if needed."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import user_create
from governance.core.context import ActorContext, bind_context
from governance.tenancy.models import Membership, Organization
from governance.tenancy.roles import PLATFORM_ADMIN
from governance.tenancy.services import membership_create, organization_create


class Command(BaseCommand):
    help = "Create a platform administrator (the portal has no superusers)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--organization", required=True, help="organisation slug")
        parser.add_argument("--organization-name", help="name, when the organisation is created now")
        parser.add_argument("--email", required=True)

    def handle(self, *args, **options) -> None:
        with bind_context(ActorContext(user_agent="manage.py create_platform_admin")):
            try:
                self._create(options)
            except ValidationError as error:
                raise CommandError("; ".join(error.messages)) from None

    def _create(self, options) -> None:
        slug = options["organization"]
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            organization = organization_create(
                actor=None, name=options["organization_name"] or slug, slug=slug
            )
            self.stdout.write(f"Created organisation {organization.slug}.")
        email = options["email"].strip().lower()
        user = User.objects.filter(email=email).first()
        password = None
        if user is None:
            password = secrets.token_urlsafe(16)
            user = user_create(actor=None, organization=organization, email=email, password=password)
        elif user.organization_id != organization.pk:
            raise CommandError(f"{email} belongs to another organisation.")
        if Membership.objects.filter(
            user=user, organization=organization, workspace__isnull=True, role_id=PLATFORM_ADMIN
        ).exists():
            self.stdout.write(f"{email} is already a platform administrator of {organization.slug}.")
            return
        membership_create(actor=None, user=user, role=PLATFORM_ADMIN, organization=organization)
        self.stdout.write(
            self.style.SUCCESS(f"{email} is now a platform administrator of {organization.slug}.")
        )
        if password:
            self.stdout.write(f"Initial password (shown once, stored hashed): {password}")
