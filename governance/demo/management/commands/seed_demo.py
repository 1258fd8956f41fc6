"""Seed a demo organisation: two workspaces (EU, US) and one user per role. Safe to run again."""

from __future__ import annotations

import secrets
from datetime import time, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import user_create, user_password_set, user_update
from governance.core.context import ActorContext, bind_context
from governance.tenancy import roles
from governance.tenancy.models import Membership, Organization, Workspace
from governance.tenancy.services import membership_create, organization_create, workspace_create
from workflows.demo import (
    seed_ai_register,
    seed_credentials,
    seed_runnable,
    seed_service_accounts,
    seed_workflows,
    start_demo_runs,
)

ORGANIZATION = ("Demo Corp", "demo")
WORKSPACES = (
    # slug, name, region, time zone
    ("customer-ops-eu", "Customer Operations (EU)", "EU", "Europe/Berlin"),
    ("finance-us", "Finance (US)", "US", "America/New_York"),
)
USERS = (
    # e-mail, display name, role, workspace slug (None: organisation-wide)
    ("admin@demo.example", "Pat Admin", roles.PLATFORM_ADMIN, None),
    ("owner@demo.example", "Olu Owner", roles.WORKSPACE_OWNER, "customer-ops-eu"),
    ("builder@demo.example", "Bea Builder", roles.WORKFLOW_BUILDER, "customer-ops-eu"),
    ("operator@demo.example", "Omar Operator", roles.WORKFLOW_OPERATOR, "customer-ops-eu"),
    ("viewer@demo.example", "Vic Viewer", roles.VIEWER, "customer-ops-eu"),
    ("officer@demo.example", "Cora Officer", roles.COMPLIANCE_OFFICER, "customer-ops-eu"),
    ("auditor@demo.example", "Ari Auditor", roles.AUDITOR, "customer-ops-eu"),
    # A second compliance officer: changes touching personal data, AI or integrations need two.
    ("privacy@demo.example", "Priya Privacy", roles.COMPLIANCE_OFFICER, "customer-ops-eu"),
)
EXTRA_MEMBERSHIPS = (
    ("owner@demo.example", roles.WORKSPACE_OWNER, "finance-us"),
    ("officer@demo.example", roles.COMPLIANCE_OFFICER, "finance-us"),
    # The auditor also answers for the organisation: its sign-ins, accounts, SSO and SCIM events.
    ("auditor@demo.example", roles.ORGANIZATION_AUDITOR, None),
)


class Command(BaseCommand):
    help = "Create the demo organisation, workspaces and one account per role (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="issue new passwords for the demo accounts and print them",
        )
        parser.add_argument(
            "--runs",
            action="store_true",
            help="start the demo runs once (make run does, when its worker and demo service are up)",
        )

    def handle(self, *args, **options) -> None:
        if options["runs"]:
            with bind_context(ActorContext(user_agent="manage.py seed_demo --runs")), transaction.atomic():
                workspace = Workspace.objects.get(organization__slug=ORGANIZATION[1], slug="customer-ops-eu")
                started = start_demo_runs(
                    workspace=workspace,
                    operator=User.objects.get(email="operator@demo.example"),
                    officer=User.objects.get(email="officer@demo.example"),
                )
            for line in started or ["The demo runs were started before; nothing new."]:
                self.stdout.write(line)
            return
        with bind_context(ActorContext(user_agent="manage.py seed_demo")), transaction.atomic():
            passwords = self._seed(reset=options["reset_passwords"])
        if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
            self.stdout.write(f"E-mails the portal sends are written to {settings.EMAIL_FILE_PATH}/.")
        if passwords:
            self.stdout.write("Demo accounts (passwords are shown once and stored hashed):")
            for email, role, password in passwords:
                self.stdout.write(f"  {email:<24} {role:<20} {password}")
        else:
            self.stdout.write("Demo data already present; run with --reset-passwords to issue new passwords.")

    def _seed(self, *, reset: bool) -> list[tuple[str, str, str]]:
        name, slug = ORGANIZATION
        organization = Organization.objects.filter(slug=slug).first() or organization_create(
            actor=None, name=name, slug=slug
        )
        workspaces = {}
        for ws_slug, ws_name, region, tz in WORKSPACES:
            workspaces[ws_slug] = Workspace.objects.filter(
                organization=organization, slug=ws_slug
            ).first() or (
                workspace_create(
                    actor=None,
                    organization=organization,
                    name=ws_name,
                    slug=ws_slug,
                    data_region=region,
                    time_zone=tz,
                    business_hours_start=time(9),
                    business_hours_end=time(18),
                )
            )
        issued = []
        for email, display_name, role, ws_slug in USERS:
            user = User.objects.filter(email=email).first()
            if user is None:
                password = secrets.token_urlsafe(12)
                user = user_create(
                    actor=None,
                    organization=organization,
                    email=email,
                    display_name=display_name,
                    password=password,
                )
                issued.append((email, role, password))
            elif reset:
                password = secrets.token_urlsafe(12)
                user_password_set(actor=None, user=user, password=password)
                issued.append((email, role, password))
            self._ensure_membership(user, role, workspaces.get(ws_slug), organization)
            if not user.region:
                # Region and current security training: what the attribute policies look at.
                user_update(
                    actor=None,
                    user=user,
                    region="EU",
                    security_training_expires_on=timezone.now().date() + timedelta(days=365),
                )
        for email, role, ws_slug in EXTRA_MEMBERSHIPS:
            self._ensure_membership(
                User.objects.get(email=email), role, workspaces.get(ws_slug), organization
            )
        builder, owner = (
            User.objects.get(email="builder@demo.example"),
            User.objects.get(email="owner@demo.example"),
        )
        if builder.manager_id is None:
            user_update(actor=None, user=builder, manager=owner)

        seed_ai_register(
            organization=organization,
            officers=[
                User.objects.get(email="officer@demo.example"),
                User.objects.get(email="privacy@demo.example"),
            ],
            today=timezone.now().date(),
        )
        seed_workflows(
            workspace=workspaces["customer-ops-eu"],
            builder=User.objects.get(pk=builder.pk),
            officers=[
                User.objects.get(email="officer@demo.example"),
                User.objects.get(email="privacy@demo.example"),
            ],
        )

        seed_credentials(workspace=workspaces["customer-ops-eu"], owner=User.objects.get(pk=owner.pk))
        seed_runnable(
            workspace=workspaces["customer-ops-eu"],
            builder=User.objects.get(pk=builder.pk),
            officers=[
                User.objects.get(email="officer@demo.example"),
                User.objects.get(email="privacy@demo.example"),
            ],
            admin=User.objects.get(email="admin@demo.example"),
        )
        seed_service_accounts(workspace=workspaces["customer-ops-eu"], owner=User.objects.get(pk=owner.pk))
        return issued

    def _ensure_membership(self, user, role, workspace, organization) -> None:
        held = Membership.objects.filter(user=user, organization=organization, workspace=workspace)
        if workspace is None:
            held = held.filter(role_id=role)
        if not held.exists():
            membership_create(
                actor=None, user=user, role=role, workspace=workspace, organization=organization
            )
