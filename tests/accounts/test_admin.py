"""User accounts in the control panel: created and changed through the services, with the diff."""

from __future__ import annotations

from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent


def test_platform_admin_creates_and_edits_a_user(world, client):
    client.force_login(world.users["platform_admin"])
    response = client.post(
        reverse("admin:accounts_user_add"),
        {"email": "New.Person@Acme.test", "display_name": "New Person", "region": "US"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(email="new.person@acme.test")
    assert user.region == "US"
    assert not user.has_usable_password()
    response = client.post(reverse("admin:accounts_user_change", args=[user.pk]), {
        "email": "new.person@acme.test", "display_name": "New Person", "region": "EU", "department": "Finance",
        "manager": world.users["workspace_owner"].pk, "security_training_expires_on": "2027-03-01",
        "is_active": "on"})  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert (user.region, user.department, user.manager_id) == (
        "EU",
        "Finance",
        world.users["workspace_owner"].pk,
    )
    diff = AuditEvent.objects.filter(action="user.updated", target_id=str(user.pk)).latest("id").data["diff"]
    assert diff["region"] == {"before": "US", "after": "EU"}


def test_bad_user_input_is_a_form_error(world, client):
    client.force_login(world.users["platform_admin"])
    before = User.objects.count()
    response = client.post(
        reverse("admin:accounts_user_add"),
        {"email": "viewer@ACME.test", "display_name": "Dup", "region": "MARS"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "exists already" in body
    assert "not one of the available choices" in body
    assert User.objects.count() == before
