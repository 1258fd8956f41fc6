"""Retention in the control panel: a compliance officer sets the frameworks in scope and sees what
they mean, holds are placed with a reason and released with one, and nobody reaches another
workspace's or organisation's retention through a forged form."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent, LegalHold, RetentionPolicy


@pytest.fixture
def officer(world, client):
    client.force_login(world.users["compliance_officer"])
    return client


def test_an_officer_sets_the_frameworks_and_reads_what_they_mean(world, officer):
    response = officer.post(
        reverse("admin:audit_retentionpolicy_add"),
        {"workspace": str(world.ws.pk), "frameworks": ["pci_dss", "hipaa"], "minimum_months": ""},
    )
    assert response.status_code == 302, (
        response.context["adminform"].form.errors if response.context else response.status_code
    )
    policy = RetentionPolicy.objects.get(workspace=world.ws)
    assert policy.frameworks == ["hipaa", "pci_dss"]
    page = officer.get(reverse("admin:audit_retentionpolicy_change", args=[policy.pk])).content.decode()
    assert "6 years" in page
    assert "45 CFR 164.316" in page
    assert AuditEvent.objects.filter(action="retention.policy_changed", workspace_id=world.ws.pk).exists()


@pytest.mark.parametrize(("minimum", "message"), [("0", "greater than or equal to 1"), ("x", "whole number")])
def test_a_bad_minimum_gets_a_field_error_and_keeps_the_choices(world, officer, minimum, message):
    response = officer.post(
        reverse("admin:audit_retentionpolicy_add"),
        {"workspace": str(world.ws.pk), "frameworks": ["sox"], "minimum_months": minimum},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page
    assert re.search(r'<input type="checkbox" name="frameworks" value="sox"[^>]*checked', page)
    assert not RetentionPolicy.objects.exists()


def test_a_forged_workspace_is_refused_on_its_field_and_recorded(world, officer):
    for forged in (str(world.foreign.pk), str(world.sibling.pk), "organization", "1e9", "٣"):
        response = officer.post(
            reverse("admin:audit_retentionpolicy_add"), {"workspace": forged, "frameworks": ["sox"]}
        )
        assert response.status_code == 200, forged
    assert not RetentionPolicy.objects.exists()
    assert AuditEvent.objects.filter(action="access.denied").exists()


def test_an_officer_places_and_releases_a_hold(world, officer):
    response = officer.post(
        reverse("admin:audit_legalhold_add"),
        {
            "workspace": str(world.ws.pk),
            "reason": "Litigation hold 2026-114",
            "owner": str(world.users["compliance_officer"].pk),
            "starts_on": "2026-01-01",
        },
    )
    assert response.status_code == 302, (
        response.context["adminform"].form.errors if response.context else response.status_code
    )
    hold = LegalHold.objects.get()
    assert (hold.workspace_id, hold.placed_by_id, hold.active) == (
        world.ws.pk,
        world.users["compliance_officer"].pk,
        True,
    )
    change = reverse("admin:audit_legalhold_change", args=[hold.pk])
    assert officer.post(change, {"release": ""}).status_code == 200  # a reason is required
    assert LegalHold.objects.get().active
    assert officer.post(change, {"release": "Matter settled"}).status_code == 302
    hold.refresh_from_db()
    assert not hold.active
    assert hold.release_reason == "Matter settled"
    actions = list(
        AuditEvent.objects.filter(target_id=str(hold.pk), target_type="audit.legalhold").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["legal_hold.placed", "legal_hold.released"]


def test_the_whole_organisation_is_for_its_administrators(world, officer, client):
    response = officer.post(
        reverse("admin:audit_legalhold_add"),
        {"workspace": "organization", "reason": "x", "owner": str(world.users["compliance_officer"].pk)},
    )
    assert response.status_code == 200
    assert not LegalHold.objects.exists()
    client.force_login(world.users["platform_admin"])
    page = client.get(reverse("admin:audit_legalhold_add")).content.decode()
    assert "The whole organisation" in page
    response = client.post(
        reverse("admin:audit_legalhold_add"),
        {
            "workspace": "organization",
            "reason": "Regulator inquiry",
            "owner": str(world.users["platform_admin"].pk),
        },
    )
    assert response.status_code == 302, (
        response.context["adminform"].form.errors if response.context else response.status_code
    )
    assert LegalHold.objects.get().workspace_id is None


def test_an_auditor_reads_but_changes_nothing_and_others_see_nothing(world, client):
    RetentionPolicy.objects.create(workspace=world.ws, frameworks=["sox"])
    foreign = RetentionPolicy.objects.create(workspace=world.foreign, frameworks=["hipaa"])
    client.force_login(world.users["auditor"])
    listing = client.get(reverse("admin:audit_retentionpolicy_changelist")).content.decode()
    assert "Ops EU" in listing
    assert "Globex" not in listing
    assert client.get(reverse("admin:audit_retentionpolicy_add")).status_code == 403
    assert client.get(reverse("admin:audit_retentionpolicy_change", args=[foreign.pk])).status_code in (
        302,
        403,
        404,
    )
    for role in ("workflow_builder", "workspace_owner"):  # no control panel, or not this page of it
        client.force_login(world.users[role])
        assert client.get(reverse("admin:audit_retentionpolicy_changelist")).status_code in (302, 403)
        assert client.get(reverse("admin:audit_legalhold_changelist")).status_code in (302, 403)
