"""Management commands: no superusers, platform administrators by command, an idempotent demo."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from accounts.models import User
from audit.models import AuditEvent
from governance.access.decision import decide
from governance.tenancy.models import Membership, Workspace


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_createsuperuser_is_refused_with_a_pointer(db):
    with pytest.raises(CommandError, match="create_platform_admin"):
        call_command("createsuperuser", "--noinput", "--email", "root@example.test")
    with pytest.raises(ImproperlyConfigured, match="create_platform_admin"):
        User.objects.create_superuser("root@example.test", "pw")
    assert not User.objects.exists()


def test_create_platform_admin_creates_organisation_user_and_role(db):
    out = _run(
        "create_platform_admin",
        "--organization",
        "acme",
        "--organization-name",
        "Acme",
        "--email",
        "Admin@Acme.test",
    )
    password = out.rsplit(": ", 1)[1].strip()
    user = User.objects.get(email="admin@acme.test")
    assert not user.is_superuser
    assert user.check_password(password)
    assert password not in user.password  # stored hashed
    assert decide(user, "user.manage", user.organization).allowed
    assert not decide(user, "execution.view", user.organization).allowed
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"organization.created", "user.created", "membership.created"} <= actions
    assert "already" in _run("create_platform_admin", "--organization", "acme", "--email", "admin@acme.test")


@pytest.mark.django_db(databases=["default", "secrets"])  # the demo stores credentials
def test_seed_demo_is_idempotent_and_prints_passwords_once():
    first = _run("seed_demo")
    lines = [line.split() for line in first.splitlines() if "@demo.example" in line]
    assert len(lines) == 8  # one per role, and a second compliance officer
    assert {line[1] for line in lines} == {
        "platform_admin",
        "workspace_owner",
        "workflow_builder",
        "workflow_operator",
        "viewer",
        "compliance_officer",
        "auditor",
    }
    email, _, password = lines[2]
    assert authenticate(email=email, password=password) is not None
    assert password not in User.objects.get(email=email).password
    counts = (User.objects.count(), Membership.objects.count(), Workspace.objects.count())
    second = _run("seed_demo")
    assert "@demo.example" not in second
    assert (User.objects.count(), Membership.objects.count(), Workspace.objects.count()) == counts
    assert set(Workspace.objects.values_list("data_region", flat=True)) == {"EU", "US"}
    reset = _run("seed_demo", "--reset-passwords")
    new_password = next(line.split()[2] for line in reset.splitlines() if line.strip().startswith(email))
    assert authenticate(email=email, password=new_password) is not None
    event = AuditEvent.objects.filter(
        action="user.password_set", target_id=str(User.objects.get(email=email).pk)
    )
    assert event.count() == 1
    assert new_password.encode() not in bytes(event.get().canonical)


@pytest.mark.django_db(databases=["default", "secrets"])
def test_api_token_command_prints_once():
    _run("seed_demo")
    out = _run("api_token_create", "--email", "auditor@demo.example", "--hours", "2")
    assert "shown once" in out
    with pytest.raises(CommandError, match="No active user"):
        call_command("api_token_create", "--email", "nobody@demo.example")


def test_user_profile_attributes_are_governed(db):
    from datetime import date

    from accounts.services import user_update
    from tests.conftest import build_world

    world = build_world()
    admin = world.users["platform_admin"]
    builder = world.users["workflow_builder"]
    user_update(
        actor=admin,
        user=builder,
        region="US",
        department="Payroll",
        manager=world.users["workspace_owner"],
        security_training_expires_on=date(2027, 1, 31),
    )
    event = AuditEvent.objects.filter(action="user.updated").latest("id")
    assert event.data["diff"]["manager"] == {"before": None, "after": "workspace_owner@acme.test"}
    assert event.data["diff"]["region"] == {"before": "EU", "after": "US"}
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as raised:
        user_update(actor=admin, user=builder, manager=world.foreign_user)
    assert "manager" in raised.value.message_dict
    with pytest.raises(ValidationError) as raised:
        user_update(actor=admin, user=builder, region="MARS")
    assert "region" in raised.value.message_dict
