"""Shared fixtures: a small world of two organisations with every role in one workspace."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from governance.tenancy import roles
from governance.tenancy.models import Membership, Role, Workspace
from tests.factories import (
    AuditEventFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    WorkspaceFactory,
)

# Every role, each with one user in the world: the columns of the authorization matrices of the
# control panel and the API (tests/governance/test_admin_matrix.py, test_api_matrix.py).
MATRIX_ROLES = roles.ALL_ROLES
# The roles of the per-action tables of the decision point (tests/access/test_decision.py). The
# organisation auditor, whose own actions are the organisation's, is checked against every action
# on its own (tests/access/test_organization_auditor.py).
ROLE_ORDER = tuple(code for code in roles.ALL_ROLES if code != roles.ORGANIZATION_AUDITOR)
# The roles held organisation-wide (a membership without a workspace).
ORGANIZATION_WIDE_ROLES = (roles.PLATFORM_ADMIN, roles.ORGANIZATION_AUDITOR)
PASSWORD = "correct horse battery staple"


@dataclass
class World:
    """Organisation A: one user per role (in workspace ``ws``, or organisation-wide for the
    organisation-wide roles), a ``sibling`` workspace with its own owner; organisation B: a
    ``foreign`` workspace with its own owner."""

    org: object
    ws: Workspace
    sibling: Workspace
    foreign_org: object
    foreign: Workspace
    users: dict[str, object] = field(default_factory=dict)
    memberships: dict[str, Membership] = field(default_factory=dict)
    sibling_membership: Membership | None = None
    foreign_membership: Membership | None = None
    events: dict[str, object] = field(default_factory=dict)
    policies: dict[str, object] = field(default_factory=dict)
    policy_changes: dict[str, object] = field(default_factory=dict)
    overrides: dict[str, object] = field(default_factory=dict)
    workflows: dict[str, object] = field(default_factory=dict)
    changes: dict[str, object] = field(default_factory=dict)
    foreign_user: object = None
    newcomers: dict[int, object] = field(default_factory=dict)


def member(user, role_code: str, workspace: Workspace | None = None, organization=None) -> Membership:
    return MembershipFactory(
        user=user,
        workspace=workspace,
        organization=organization or (workspace.organization if workspace else user.organization),
        role=Role.objects.get(pk=role_code),
    )


def ensure_roles() -> None:
    """Transactional tests flush every table, the migration-made roles included; put them back."""
    import importlib

    from django.apps import apps

    if not Role.objects.exists():
        importlib.import_module("governance.tenancy.migrations.0002_roles").create_roles(apps, None)
        importlib.import_module("governance.tenancy.migrations.0003_policy_permissions").grant(apps, None)
        importlib.import_module("governance.tenancy.migrations.0004_workflow_stop").grant(apps, None)
        importlib.import_module("governance.tenancy.migrations.0005_keys_integrations").grant(apps, None)
        importlib.import_module("governance.tenancy.migrations.0006_execution_halts").grant(apps, None)
        importlib.import_module("governance.tenancy.migrations.0007_ai_register").grant(apps, None)
        importlib.import_module("governance.tenancy.migrations.0008_human_task_decide").grant(apps, None)
        importlib.import_module("governance.tenancy.migrations.0009_organization_auditor").grant(apps, None)
    from governance.access.models import Policy

    if not Policy.objects.exists():
        importlib.import_module("governance.access.migrations.0002_shipped_policies").ship(apps, None)


def build_world() -> World:
    ensure_roles()
    org = OrganizationFactory(name="Acme", slug="acme")
    ws = WorkspaceFactory(organization=org, name="Ops EU", slug="ops-eu", data_region="EU")
    sibling = WorkspaceFactory(
        organization=org, name="Finance US", slug="fin-us", data_region="US", time_zone="America/New_York"
    )
    foreign_org = OrganizationFactory(name="Globex", slug="globex")
    foreign = WorkspaceFactory(organization=foreign_org, name="Globex Ops", slug="globex-ops")
    world = World(org=org, ws=ws, sibling=sibling, foreign_org=foreign_org, foreign=foreign)
    for code in MATRIX_ROLES:
        user = UserFactory(organization=org, email=f"{code}@acme.test", region="EU")
        world.users[code] = user
        if code in ORGANIZATION_WIDE_ROLES:
            world.memberships[code] = member(user, code, organization=org)
        else:
            world.memberships[code] = member(user, code, ws)
    # Each other workspace has its owner, and a viewer whose membership the tests act on.
    member(UserFactory(organization=org, email="owner@fin.acme.test"), roles.WORKSPACE_OWNER, sibling)
    world.sibling_membership = member(
        UserFactory(organization=org, email="viewer@fin.acme.test"), roles.VIEWER, sibling
    )
    world.foreign_user = UserFactory(organization=foreign_org, email="owner@globex.test")
    member(world.foreign_user, roles.WORKSPACE_OWNER, foreign)
    world.foreign_membership = member(
        UserFactory(organization=foreign_org, email="viewer@globex.test"), roles.VIEWER, foreign
    )
    for organization in (org, foreign_org):
        world.newcomers[organization.pk] = UserFactory(organization=organization)
    for name, workspace in (("own", ws), ("sibling", sibling), ("foreign", foreign)):
        world.events[name] = AuditEventFactory(workspace=workspace)
    _access_objects(world)
    _workflow_objects(world)
    return world


SIMPLE_DEFINITION = {
    "trigger": {"type": "manual"},
    "steps": [{"id": "tag", "type": "transform", "expression": "x", "next": None}],
}


def _workflow_objects(world: World) -> None:
    from django.utils import timezone

    from workflows.changes.definition import content_hash, diff_definitions
    from workflows.changes.models import ChangeRequest, Workflow, WorkflowVersion

    for name, workspace, author in (
        ("own", world.ws, world.users["workflow_builder"]),
        ("sibling", world.sibling, world.sibling_membership.user),
        ("foreign", world.foreign, world.foreign_user),
    ):
        workflow = Workflow.objects.create(
            workspace=workspace,
            name=f"{name} flow",
            slug=f"{name}-flow",
            data_region=workspace.data_region,
            owner=author,
        )
        version = WorkflowVersion.objects.create(
            workflow=workflow,
            number=1,
            definition=SIMPLE_DEFINITION,
            content_hash=content_hash(SIMPLE_DEFINITION),
            created_by=author,
        )
        world.workflows[name] = workflow
        world.changes[name] = ChangeRequest.objects.create(
            workflow=workflow,
            version=version,
            author=author,
            summary=f"{name} change",
            state="submitted",
            submitted_at=timezone.now(),
            diff=diff_definitions(None, SIMPLE_DEFINITION),
            required_tiers=[
                {
                    "code": "compliance",
                    "reason": "always",
                    "approver": "compliance_officer",
                    "checklist": False,
                }
            ],
        )


def _access_objects(world: World) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from governance.access.models import OnCallOverride, Policy, PolicyChange

    rule = (
        '@id("x")\nforbid(principal, action, resource is Portal::Workflow) when { resource.handles_pii };\n'
    )
    world.policies["own"] = Policy.objects.get(organization__isnull=True, name="production-business-hours")
    world.policies["foreign"] = Policy.objects.create(
        organization=world.foreign_org, name="globex-rule", text=rule
    )
    for name, organization, author in (
        ("own", world.org, world.users["compliance_officer"]),
        ("foreign", world.foreign_org, world.foreign_user),
    ):
        world.policy_changes[name] = PolicyChange.objects.create(
            organization=organization, name=f"{name}-rule", text=rule, reason="test", proposed_by=author
        )
    now = timezone.now()
    for name, workspace, holder in (
        ("own", world.ws, world.users["workflow_operator"]),
        ("sibling", world.sibling, world.sibling_membership.user),
        ("foreign", world.foreign, world.foreign_user),
    ):
        world.overrides[name] = OnCallOverride.objects.create(
            user=holder,
            workspace=workspace,
            reason="incident",
            starts_at=now,
            ends_at=now + timedelta(hours=1),
        )


@pytest.fixture
def world(db) -> World:
    return build_world()


@pytest.fixture(scope="module")
def _module_world(django_db_setup, django_db_blocker):
    """One world for the tests of a module, built once inside a transaction that is rolled back
    after the module's last test. Each test's own transaction (the ``db`` fixture) is a savepoint
    within it, so whatever a test writes is gone before the next one starts."""
    from django.db import transaction

    with django_db_blocker.unblock(), transaction.atomic():
        pristine = build_world()
        yield pristine
        transaction.set_rollback(True)


@pytest.fixture
def shared_world(_module_world, db) -> World:
    """What ``build_world()`` returns, without building it for every test: the rows are the
    module's (see ``_module_world``), the objects a fresh copy of those ``build_world`` returned,
    so a test that changes or caches something on them leaves the next test's copy as it was."""
    import copy

    return copy.deepcopy(_module_world)


def mfa_device_for(user):
    """The user's confirmed TOTP device (made once): what a person enrolled at first sign-in has."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Test app", confirmed=True)


def app_code_of(device, ahead: int = 0) -> str:
    """The code the person's authenticator app shows now (``ahead`` steps later), computed from
    the device's key the way the app does."""
    import time

    from django_otp.oath import TOTP

    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift + ahead)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


def mfa_complete(client, user) -> None:
    """Verify the client's session with the user's TOTP device through django-otp's own session
    login (what a correct code does), and note it on the session's record."""
    from django.http import HttpRequest
    from django.utils import timezone
    from django_otp import login as otp_login

    from accounts.models import UserSession
    from accounts.sessions import session_ref_of

    request = HttpRequest()
    request.session = client.session
    request.user = user
    otp_login(request, mfa_device_for(user))
    request.session.save()
    UserSession.objects.filter(session_ref=session_ref_of(request.session.session_key)).update(
        mfa_verified_at=timezone.now()
    )


@pytest.fixture
def loopback_idp_allowed(settings):
    """The test identity providers listen on plain http on 127.0.0.1: the operator's allow-lists
    of the network boundary let the portal fetch from them (nothing else on loopback)."""
    settings.OUTBOUND_ALLOW_LIST = ["127.0.0.1"]
    settings.OUTBOUND_ALLOW_PLAIN_HTTP = ["127.0.0.1"]


@pytest.fixture(scope="session")
def _key_file_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("key-files")


_key_file_numbers = itertools.count()


@pytest.fixture(autouse=True)
def _own_key_file(_key_file_dir):
    """Each test has a key file of its own, missing until the test makes a key (as on a fresh
    install): the key-encryption keys of earlier tests, whose rows were rolled back, are not
    parsed and rewritten again by every key a later test makes, nor kept from one run to the next."""
    from django.test import override_settings

    path = _key_file_dir / str(next(_key_file_numbers)) / "kek.json"
    with override_settings(CRYPTO_LOCAL_KEY_FILE=str(path)):
        yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: allauth's per-address rate limit of the sign-in page
    (30 a minute) lives there, and earlier tests' sign-ins from the same addresses must not count."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _force_login_completes_mfa(request, monkeypatch):
    """Every page is behind MFA: ``client.force_login`` also passes MFA for the session, the way
    a person does after their password. Tests of MFA itself opt out with ``no_auto_mfa``."""
    if request.node.get_closest_marker("no_auto_mfa"):
        return
    from django.test import Client

    original = Client.force_login

    def force_login(self, user, backend=None):
        original(self, user, backend)
        mfa_complete(self, user)

    monkeypatch.setattr(Client, "force_login", force_login)
