"""Evidence orders in the control panel: ordering, the field errors, the recorded denial, the
build with its progress, and the ledger events of each step."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse

from audit.evidence import offline_verifier as verify
from audit.evidence import orders as order_services
from audit.evidence.orders import (
    evidence_order_build,
    evidence_order_create,
    evidence_order_progress,
    evidence_order_start,
    evidence_path,
    utc_today,
)
from audit.models import AuditEvent, EvidenceOrder
from audit.signing import load_signing_key, public_key_pem
from governance.access.decision import AccessDenied
from tests.conftest import member
from tests.factories import UserFactory, make_events

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

ADD_URL = reverse("admin:audit_evidenceorder_add")
LIST_URL = reverse("admin:audit_evidenceorder_changelist")


@pytest.fixture(autouse=True)
def evidence_dir(settings, tmp_path):
    settings.EVIDENCE_DIR = tmp_path / "evidence"
    return settings.EVIDENCE_DIR


@pytest.fixture
def auditor(world):
    return world.users["auditor"]


def form(workspace, *, first=None, last=None, framework="") -> dict:
    today = utc_today().isoformat()
    return {"workspace": workspace.pk if workspace else "", "period_start": first or today,
            "period_end": last or today, "framework": framework, "_save": "Save"}  # fmt: skip


def actions(**filters) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("id").values_list("action", flat=True))


def test_an_auditor_orders_a_package_and_it_is_built_and_verifies(
    client, world, auditor, django_capture_on_commit_callbacks
):
    """GIVEN events in the auditor's workspace WHEN they order a package in the control panel
    THEN the job builds it (eagerly here), the order is ready with its file's digest, the file is
    readable by the portal only, verifies offline, names the framework, and each step is in the ledger."""
    make_events(4, workspace=world.ws)
    client.force_login(auditor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(ADD_URL, form(world.ws, framework="soc2"))
    assert response.status_code == 302, response.content.decode()[:2000]
    order = EvidenceOrder.objects.get()
    assert (order.requester, order.workspace, order.state, order.attempts) == (auditor, world.ws, "ready", 1)
    assert order.progress_done == order.progress_total > 0
    path = evidence_path(order)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    report = verify.verify_package(
        str(path), public_key_pem=public_key_pem(load_signing_key().public_key()).encode()
    )
    assert report.ok, report.problems
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["scope"]["framework"] == "SOC 2"
    assert manifest["counts"]["events"] >= 4
    assert order.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert actions(target_type="audit.evidenceorder", target_id=str(order.pk)) == [
        "evidence.ordered", "evidence.order_started", "evidence.order_ready",
    ]  # fmt: skip
    ordered = AuditEvent.objects.get(action="evidence.ordered")
    assert (ordered.actor_id, ordered.workspace_id, ordered.data["framework"]) == (
        auditor.pk,
        world.ws.pk,
        "soc2",
    )
    assert AuditEvent.objects.filter(action="evidence.package_built", actor_id=auditor.pk).count() == 1


def test_the_form_offers_only_the_auditors_workspaces(client, world, auditor):
    """GIVEN an auditor of one workspace WHEN they open the order form THEN only that workspace is offered."""
    client.force_login(auditor)
    page = client.get(ADD_URL).content.decode()
    assert f'<option value="{world.ws.pk}">' in page
    assert f'value="{world.sibling.pk}"' not in page
    assert f'value="{world.foreign.pk}"' not in page


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"workspace": ""}, "workspace", "Choose the workspace the package is for."),
        ({"period_start": "2026-03-10", "period_end": "2026-03-01"}, "period_end", "The period is inverted"),
        ({"period_end": "2999-01-01"}, "period_end", "cannot end after today"),
        ({"period_start": "2999-01-01", "period_end": "2999-01-02"}, "period_start", "starts in the future"),
        ({"period_start": "not a date"}, "period_start", "Enter a valid date."),
        ({"framework": "hipaa"}, "framework", "Select a valid choice."),
    ],
)
def test_bad_input_is_a_field_error_and_orders_nothing(client, world, auditor, change, field, message):
    """GIVEN an auditor WHEN they submit an empty scope, an inverted, future or malformed period or an
    unknown framework THEN the form shows the error on the field, and no order exists."""
    client.force_login(auditor)
    response = client.post(ADD_URL, {**form(world.ws), **change})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field])
    assert not EvidenceOrder.objects.exists()


@pytest.mark.parametrize("where", ["sibling", "foreign"])
def test_a_forged_workspace_is_refused_and_the_denial_recorded(client, world, auditor, where):
    """GIVEN an auditor of one workspace WHEN a forged form names another workspace (same or other
    organisation) THEN a field error, no order, and an access.denied event for evidence.order."""
    workspace = getattr(world, where)
    client.force_login(auditor)
    response = client.post(ADD_URL, form(workspace))
    assert response.status_code == 200
    assert "outside your assignment" in " ".join(response.context["adminform"].form.errors["workspace"])
    assert not EvidenceOrder.objects.exists()
    denial = AuditEvent.objects.get(action="access.denied")
    assert (denial.outcome, denial.actor_id, denial.data["action"]) == (
        "denied",
        auditor.pk,
        "evidence.order",
    )
    assert denial.workspace_id == workspace.pk


def test_the_service_refuses_a_workspace_outside_the_assignment(world, auditor):
    """GIVEN an auditor WHEN the service is asked for a sibling workspace THEN AccessDenied, nothing written."""
    with pytest.raises(AccessDenied):
        evidence_order_create(actor=auditor, workspace=world.sibling, period_start=utc_today(),
                              period_end=utc_today())  # fmt: skip
    assert not EvidenceOrder.objects.exists()


def _order(world, requester, **kwargs) -> EvidenceOrder:
    return evidence_order_create(
        actor=requester, workspace=world.ws, period_start=kwargs.get("first", utc_today()),
        period_end=kwargs.get("last", utc_today()),
    )  # fmt: skip


def test_each_person_sees_only_their_own_orders(client, world, auditor):
    """GIVEN orders of two auditors of the workspace WHEN each opens the list THEN each sees only their own,
    and the other's order page is as if it did not exist."""
    other = UserFactory(organization=world.org, email="second-auditor@acme.test")
    member(other, "auditor", world.ws)
    mine, theirs = _order(world, auditor), _order(world, other)
    client.force_login(auditor)
    listed = list(client.get(LIST_URL).context["cl"].result_list)
    assert listed == [mine]
    response = client.get(reverse("admin:audit_evidenceorder_change", args=[theirs.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def test_progress_is_reported_and_shown_while_building(client, world, auditor):
    """GIVEN an order being built WHEN the list and the order page are opened THEN they show the phase
    and percentage and refresh themselves; the build reports events, proofs, then the records."""
    make_events(3, workspace=world.ws)
    order = _order(world, auditor)
    evidence_order_start(order_id=order.pk)
    evidence_order_progress(order_id=order.pk, phase="proofs", done=4, total=10)
    client.force_login(auditor)
    listing = client.get(LIST_URL).content.decode()
    assert "Building 40%, proofs" in listing
    assert '<meta http-equiv="refresh" content="3">' in listing
    page = client.get(reverse("admin:audit_evidenceorder_change", args=[order.pk])).content.decode()
    assert 'value="40"' in page
    assert "4 of 10 steps, 40%" in page
    assert "Progress done" not in page
    assert '<meta http-equiv="refresh"' in page

    seen = []
    original = order_services.evidence_order_progress

    def spy(**kwargs):
        seen.append((kwargs["phase"], kwargs["done"], kwargs["total"]))
        original(**kwargs)

    with mock.patch.object(order_services, "evidence_order_progress", spy):
        assert evidence_order_build(order_id=order.pk) == "ready"
    total = seen[0][2]
    phases = [phase for index, (phase, _, _) in enumerate(seen) if index == 0 or seen[index - 1][0] != phase]
    assert phases == ["events", "proofs", "records"]
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)
    assert seen[-1][1] == total - 1
    order.refresh_from_db()
    assert order.attempts == 2
    assert order.percent == 100
    ready_list = client.get(LIST_URL).content.decode()
    assert 'http-equiv="refresh"' not in ready_list
    assert "/download" in ready_list


def test_a_build_the_builder_refuses_fails_the_order_with_its_message(world, auditor):
    """GIVEN a period without any event of the workspace WHEN the order is built THEN it fails with the
    builder's message, recorded as evidence.order_failed, and leaves no file behind."""
    long_ago = utc_today() - timedelta(days=400)
    order = _order(world, auditor, first=long_ago, last=long_ago)
    assert evidence_order_build(order_id=order.pk) == "failed"
    order.refresh_from_db()
    assert order.state == "failed"
    assert "No ledger events" in order.error
    failed = AuditEvent.objects.get(action="evidence.order_failed")
    assert failed.outcome == "failed"
    assert "No ledger events" in failed.data["error"]
    assert list(evidence_path(order).parent.iterdir()) == []


def test_a_redelivered_job_of_a_finished_order_does_nothing(world, auditor):
    """GIVEN a ready order WHEN its job is delivered again THEN it is not rebuilt."""
    make_events(2, workspace=world.ws)
    order = _order(world, auditor)
    assert evidence_order_build(order_id=order.pk) == "ready"
    assert evidence_order_build(order_id=order.pk) == "ready"
    assert AuditEvent.objects.filter(action="evidence.package_built").count() == 1
    assert EvidenceOrder.objects.get().attempts == 1


def test_attempts_are_bounded(world, auditor, settings):
    """GIVEN an order whose workers were lost as many times as allowed WHEN it is delivered again
    THEN it fails with a message saying so instead of building forever."""
    make_events(1, workspace=world.ws)
    order = _order(world, auditor)
    EvidenceOrder.objects.filter(pk=order.pk).update(
        state="building", attempts=settings.EVIDENCE_BUILD_MAX_ATTEMPTS
    )
    assert evidence_order_build(order_id=order.pk) == "failed"
    order.refresh_from_db()
    assert "attempted 3 times" in order.error


def test_an_assignment_withdrawn_before_the_build_fails_the_order(world, auditor):
    """GIVEN an order WHEN the auditor's membership is removed before the job runs THEN the order fails."""
    make_events(1, workspace=world.ws)
    order = _order(world, auditor)
    world.memberships["auditor"].delete()
    assert evidence_order_build(order_id=order.pk) == "failed"
    order.refresh_from_db()
    assert "may no longer order evidence" in order.error
    assert not AuditEvent.objects.filter(action="evidence.package_built").exists()


def test_a_stale_partial_file_is_removed_before_rebuilding(world, auditor):
    """GIVEN the partial file of a killed attempt WHEN the order is built again THEN it is gone and the
    package is complete."""
    make_events(2, workspace=world.ws)
    order = _order(world, auditor)
    path = evidence_path(order)
    stale = path.with_name(f".{path.name}.partial-99999")
    stale.write_bytes(b"PK half a zip")
    assert evidence_order_build(order_id=order.pk) == "ready"
    assert not stale.exists()
    assert verify.verify_package(str(path)).ok


def test_the_service_check_stands_behind_the_form(client, world, auditor):
    """GIVEN a form that (wrongly) let a sibling workspace through WHEN the order is saved THEN the
    service refuses it: 403, no order, and the denial recorded in the ledger."""
    allow = mock.Mock(return_value=mock.Mock(allowed=True))
    client.force_login(auditor)
    with mock.patch("audit.evidence.admin.decide", allow):
        response = client.post(ADD_URL, form(world.sibling))
    assert response.status_code == 403
    assert not EvidenceOrder.objects.exists()
    denials = AuditEvent.objects.filter(action="access.denied")
    assert [(denial.data["action"], denial.workspace_id) for denial in denials] == [
        ("evidence.order", world.sibling.pk)
    ]
