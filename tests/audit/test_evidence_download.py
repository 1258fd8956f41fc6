"""Downloading evidence packages: from a signed link bound to the order and its requester, expiring;
every download and every refusal in the ledger."""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.evidence.links import evidence_link_issue
from audit.evidence.orders import (
    evidence_order_build,
    evidence_order_create,
    evidence_orders_expire,
    evidence_path,
    utc_today,
)
from audit.models import AuditEvent, EvidenceOrder
from tests.conftest import member
from tests.factories import UserFactory, make_events

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])


@pytest.fixture(autouse=True)
def evidence_dir(settings, tmp_path):
    settings.EVIDENCE_DIR = tmp_path / "evidence"


@pytest.fixture
def auditor(world):
    return world.users["auditor"]


@pytest.fixture
def order(world, auditor) -> EvidenceOrder:
    make_events(3, workspace=world.ws)
    order = evidence_order_create(
        actor=auditor, workspace=world.ws, period_start=utc_today(), period_end=utc_today()
    )
    assert evidence_order_build(order_id=order.pk) == "ready"
    order.refresh_from_db()
    return order


def denial() -> AuditEvent:
    return AuditEvent.objects.get(action="evidence.download_denied")


def test_the_requester_downloads_the_package_and_it_is_recorded(client, order, auditor):
    """GIVEN a ready order WHEN its requester follows their link THEN the ZIP comes as an attachment, not
    cached, byte for byte the file, and evidence.downloaded names them and the file's digest."""
    client.force_login(auditor)
    response = client.get(evidence_link_issue(order=order, user=auditor))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment;")
    assert f"evidence-ops-eu-{order.period_start}-{order.period_end}.zip" in response["Content-Disposition"]
    assert response["Cache-Control"] == "no-store"
    assert b"".join(response.streaming_content) == evidence_path(order).read_bytes()
    event = AuditEvent.objects.get(action="evidence.downloaded")
    assert (event.actor_id, event.workspace_id, event.target_id) == (
        auditor.pk,
        order.workspace_id,
        str(order.pk),
    )
    assert event.data["file_sha256"] == order.file_sha256
    assert not AuditEvent.objects.filter(action="evidence.download_denied").exists()


def test_the_order_page_offers_the_link(client, order, auditor):
    """GIVEN a ready order WHEN its page is opened THEN it links to the download and shows the digest."""
    client.force_login(auditor)
    page = client.get(reverse("admin:audit_evidenceorder_change", args=[order.pk])).content.decode()
    assert "Download the package" in page
    assert order.file_sha256 in page
    assert 'http-equiv="refresh"' not in page


def test_someone_elses_link_is_refused_and_recorded(client, world, order, auditor):
    """GIVEN a link issued to one auditor WHEN another auditor of the same workspace follows it THEN 403, a
    clear page, and evidence.download_denied with the reason."""
    other = UserFactory(organization=world.org, email="second-auditor@acme.test")
    member(other, "auditor", world.ws)
    client.force_login(other)
    response = client.get(evidence_link_issue(order=order, user=auditor))
    assert response.status_code == 403
    assert "issued to someone else" in response.content.decode()
    event = denial()
    assert (event.outcome, event.actor_id, event.data["reason"]) == ("denied", other.pk, "other_user")
    assert not AuditEvent.objects.filter(action="evidence.downloaded").exists()


def test_a_link_is_never_issued_to_another_person(order, world):
    """GIVEN an order WHEN a link is asked for someone other than its requester THEN it is refused."""
    with pytest.raises(ValueError, match="only to the person who ordered"):
        evidence_link_issue(order=order, user=world.users["compliance_officer"])


def test_an_expired_link_is_refused_and_recorded(client, order, auditor, settings):
    """GIVEN a link signed longer ago than the time-to-live WHEN it is followed THEN 410 and the denial."""
    with mock.patch(
        "django.core.signing.time.time", return_value=time.time() - settings.EVIDENCE_LINK_TTL_SECONDS - 5
    ):
        url = evidence_link_issue(order=order, user=auditor)
    client.force_login(auditor)
    response = client.get(url)
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert denial().data["reason"] == "expired"


@pytest.mark.parametrize("tamper", ["order", "signature"])
def test_a_tampered_link_is_refused_and_recorded(client, world, auditor, order, tamper):
    """GIVEN a valid link WHEN its order number or its signature is altered THEN 403 and the denial."""
    other_order = evidence_order_create(actor=auditor, workspace=world.ws, period_start=utc_today(),
                                        period_end=utc_today())  # fmt: skip
    token = evidence_link_issue(order=order, user=auditor).split("/")[2]
    value, stamp, signature = token.split(":")
    if tamper == "order":
        token = f"{other_order.pk}.{auditor.pk}:{stamp}:{signature}"
    else:
        token = f"{value}:{stamp}:{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    client.force_login(auditor)
    response = client.get(reverse("evidence-download", args=[token]))
    assert response.status_code == 403
    assert "not valid" in response.content.decode()
    assert denial().data["reason"] == "invalid_signature"


def test_an_order_not_ready_yields_no_file(client, world, auditor):
    """GIVEN a queued order WHEN its link is followed THEN 404 saying it is not ready, recorded."""
    queued = evidence_order_create(
        actor=auditor, workspace=world.ws, period_start=utc_today(), period_end=utc_today()
    )
    client.force_login(auditor)
    response = client.get(evidence_link_issue(order=queued, user=auditor))
    assert response.status_code == 404
    assert "not ready" in response.content.decode()
    assert denial().data["reason"] == "not_ready"


def test_a_withdrawn_assignment_stops_the_link(client, order, auditor, world):
    """GIVEN a ready order WHEN the requester is no longer an auditor of the workspace THEN 403, recorded."""
    url = evidence_link_issue(order=order, user=auditor)
    world.memberships["auditor"].delete()
    client.force_login(auditor)
    response = client.get(url)
    assert response.status_code == 403
    assert denial().data["reason"] == "not_assigned"


def test_signing_in_is_required(client, order, auditor):
    """GIVEN a link WHEN it is followed signed out THEN the control panel's sign-in comes first."""
    response = client.get(evidence_link_issue(order=order, user=auditor))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_expired_packages_are_deleted_and_their_links_refused(
    client, order, auditor, django_capture_on_commit_callbacks
):
    """GIVEN a ready order past its retention WHEN the beat expires it THEN the file is deleted, the
    order is expired in the ledger, and its link answers 410."""
    url = evidence_link_issue(order=order, user=auditor)
    EvidenceOrder.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert evidence_orders_expire() == 1
    assert not evidence_path(order).exists()
    assert AuditEvent.objects.filter(action="evidence.order_expired", target_id=str(order.pk)).exists()
    client.force_login(auditor)
    response = client.get(url)
    assert response.status_code == 410
    assert denial().data["reason"] == "package_expired"


def test_only_get_is_served(client, order, auditor):
    """GIVEN a link WHEN it is posted to THEN 405."""
    client.force_login(auditor)
    assert client.post(evidence_link_issue(order=order, user=auditor)).status_code == 405
