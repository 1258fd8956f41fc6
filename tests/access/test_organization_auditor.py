"""The organisation's own events (sign-ins, MFA, SSO, SCIM, accounts and organisation-wide roles)
belong to no workspace. The organisation auditor, an organisation-wide role, reads them and orders
evidence packages of them; it reaches no workspace's events or data, and no workspace role
reaches the organisation's events."""

from __future__ import annotations

import json
import zipfile

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse

from audit.evidence import offline_verifier as verify
from audit.evidence.builder import EvidenceError, evidence_package_build
from audit.evidence.orders import evidence_order_create, evidence_path, utc_today
from audit.models import AuditEvent, EvidenceOrder
from audit.sealing import ledger_seal_all
from audit.signing import load_signing_key, public_key_pem
from governance.access.actions import ACTIONS
from governance.access.decision import AccessDenied, decide
from governance.access.queries import restrict
from tests.conftest import member
from tests.factories import UserFactory, make_events

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

ORG_ROLE = "organization_auditor"


@pytest.fixture
def org_auditor(world):
    user = UserFactory(organization=world.org, email="org.auditor@acme.test", region="EU")
    member(user, ORG_ROLE, organization=world.org)
    return user


@pytest.fixture
def events(world):
    """Two organisation events of Acme, one of Globex, and events of two Acme workspaces."""
    acme = _org_events(world.org, 2)
    globex = _org_events(world.foreign_org, 1)
    own = make_events(2, workspace=world.ws)
    sibling = make_events(1, workspace=world.sibling)
    return {
        "org": acme,
        "foreign": globex,
        "ws": own,
        "sibling": sibling,
    }


def _org_events(organization, count: int, action: str = "login.succeeded") -> list[AuditEvent]:
    """Events of the organisation itself, recorded as the recording service writes them."""
    from audit.services import audit_event_record, audited_transaction

    recorded = []
    for _ in range(count):
        with audited_transaction():
            recorded.append(
                audit_event_record(
                    action=action, actor=None, organization_id=organization.pk, workspace_id=None
                )
            )
    return recorded


# --- The decision point ----------------------------------------------------------------------


def test_the_organisation_auditor_decides_on_organisation_events_only(world, org_auditor, events):
    """GIVEN events of the organisation, of its workspaces and of another organisation THEN the
    organisation auditor may read exactly the organisation's own, and a workspace auditor, officer
    or owner none of them."""
    assert all(decide(org_auditor, "audit.view", event).allowed for event in events["org"])
    for kind in ("foreign", "ws", "sibling"):
        assert not any(decide(org_auditor, "audit.view", event).allowed for event in events[kind]), kind
    for code in ("auditor", "compliance_officer", "workspace_owner", "platform_admin"):
        user = world.users[code]
        assert not any(decide(user, "audit.view", event).allowed for event in events["org"]), code


def test_lists_keep_each_scope_apart(world, org_auditor, events):
    """restrict() gives the same answer as decide(): the organisation auditor lists the
    organisation's events, the workspace auditor its workspace's, one person holding both lists
    both, and nobody another organisation's."""
    everything = AuditEvent.objects.all()

    def listed(user) -> set[int]:
        return set(restrict(everything, user, "audit.view").values_list("pk", flat=True))

    org_ids = {event.pk for event in events["org"]}
    ws_ids = {event.pk for event in events["ws"]}
    assert listed(org_auditor) == org_ids
    assert listed(world.users["auditor"]) >= ws_ids
    assert not listed(world.users["auditor"]) & org_ids
    assert not listed(world.users["platform_admin"])
    member(world.users["auditor"], ORG_ROLE, organization=world.org)
    from governance.access.decision import forget

    forget(world.users["auditor"])
    both = listed(world.users["auditor"])
    assert both >= org_ids | ws_ids
    assert not both & {event.pk for event in events["foreign"] + events["sibling"]}
    for user in (org_auditor, world.users["auditor"]):
        for event in everything:
            assert (event.pk in listed(user)) == decide(user, "audit.view", event).allowed


def test_the_role_reaches_nothing_of_a_workspace(world, org_auditor):
    """GIVEN every action of the portal THEN of the workspace-scoped ones, on a workspace of its own
    organisation, the organisation auditor may only open the control panel and read dashboards and
    roles; on the organisation, only what the role is for; on another organisation, nothing."""
    on_workspace = {
        code
        for code in ACTIONS
        if ACTIONS[code].scope != "organization" and decide(org_auditor, code, world.ws).allowed
    }
    assert on_workspace == {"admin.access", "dashboard.view", "role.view"}
    on_org = {code for code in ACTIONS if decide(org_auditor, code, world.org).allowed}
    assert on_org == {
        "admin.access", "dashboard.view", "role.view", "user.view",
        "audit.view_organization", "evidence.order_organization", "retention.view_organization",
    }  # fmt: skip
    assert not {code for code in ACTIONS if decide(org_auditor, code, world.foreign).allowed}


def test_the_organisation_actions_asked_directly_reach_no_workspace_row(world, org_auditor, events):
    """Asked for the organisation's own action itself (not through the workspace action it stands
    for), decide and restrict still keep to the rows without a workspace."""
    for event in events["ws"] + events["sibling"]:
        assert not decide(org_auditor, "audit.view_organization", event).allowed
    assert not decide(org_auditor, "evidence.order_organization", world.ws).allowed
    listed = set(
        restrict(AuditEvent.objects.all(), org_auditor, "audit.view_organization").values_list(
            "pk", flat=True
        )
    )
    assert listed == {event.pk for event in events["org"]}
    from governance.tenancy.models import Workspace

    assert not restrict(Workspace.objects.all(), org_auditor, "evidence.order_organization").exists()


def test_every_control_panel_list_but_its_own_is_closed(client, world, org_auditor):
    """GIVEN every model of the control panel WHEN the organisation auditor opens its list THEN
    only the ledger, evidence orders, user accounts (with their SCIM groups) and the roles table
    open; the rest answer 403."""
    client.force_login(org_auditor)
    opened = set()
    for model in admin.site._registry:
        try:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        except NoReverseMatch:
            continue
        status = client.get(url).status_code
        assert status in (200, 403), (model, status)
        if status == 200:
            opened.add(model._meta.label_lower)
    assert opened == {
        "audit.auditevent", "audit.evidenceorder", "accounts.user", "accounts.scimgroup", "tenancy.role",
        "audit.legalhold",
    }  # fmt: skip


def test_the_ledger_page_shows_organisation_events_to_the_organisation_auditor(
    client, world, org_auditor, events
):
    """The changelist lists the organisation's events, marked "(organisation)", and filters on them;
    a workspace auditor is not offered the filter, and a forged value is reported and ignored."""
    client.force_login(org_auditor)
    url = reverse("admin:audit_auditevent_changelist")
    page = client.get(url).content.decode()
    assert "(organisation)" in page
    assert "The organisation&#x27;s own events" in page
    listed = client.get(url, {"workspace": "organization"}).context["cl"].result_list
    assert {event.pk for event in listed} >= {event.pk for event in events["org"]}
    assert {(event.organization_id, event.workspace_id) for event in listed} == {(world.org.pk, None)}
    client.force_login(world.users["auditor"])
    response = client.get(url, {"workspace": "organization"})
    assert "own events" not in response.content.decode().split("Filter")[0]
    assert {event.pk for event in response.context["cl"].result_list}.isdisjoint(e.pk for e in events["org"])


def test_the_posture_panel_counts_only_what_the_reader_may_read(client, world, org_auditor, events):
    """The ledger panel names the scopes the reader may read with their unsealed counts: the
    organisation auditor sees its organisation's own events (2), not Globex's nor the workspaces'."""
    from audit.posture import ledger_health

    health = ledger_health(org_auditor)
    assert health["scopes"] == [{"name": "The organisation's own events", "unsealed": 2}]
    officer = ledger_health(world.users["compliance_officer"])
    assert [scope["name"] for scope in officer["scopes"]] == [world.ws.name]


# --- Evidence packages of the organisation's own events --------------------------------------


def test_an_organisation_package_proves_the_organisation_events_offline(world, org_auditor, tmp_path):
    """GIVEN organisation events and workspace events WHEN an organisation package is built THEN it
    holds exactly the organisation's events with their proofs, the organisation-wide roles and their
    changes, no workspace record, and the offline verifier accepts it."""
    _org_events(world.org, 3)
    make_events(2, workspace=world.ws)
    ledger_seal_all()
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    result = evidence_package_build(
        actor=org_auditor, workspace=None, organization=world.org,
        start=now - timedelta(days=1), end=now, out=tmp_path / "org.zip",
    )  # fmt: skip
    with zipfile.ZipFile(result.path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        lines = [json.loads(line) for line in archive.read("events.jsonl").splitlines()]
        memberships = archive.read("memberships.csv").decode()
    assert "approvals.csv" not in names
    assert "credentials.csv" not in names
    assert {"memberships.csv", "role-changes.csv", "events.jsonl", "proofs.jsonl"} <= names
    assert manifest["scope"]["workspace_id"] is None
    assert manifest["scope"]["organization"]["slug"] == "acme"
    documents = [json.loads(line["canonical"]) for line in lines]
    assert len(documents) >= 3
    assert {(d["organization_id"], d["workspace_id"]) for d in documents} == {(world.org.pk, None)}
    assert ORG_ROLE in memberships
    assert "workflow_builder" not in memberships
    key = public_key_pem(load_signing_key().public_key()).encode()
    report = verify.verify_package(str(result.path), public_key_pem=key)
    assert report.ok, report.problems
    built = AuditEvent.objects.get(action="evidence.package_built")
    assert (built.workspace_id, built.organization_id, built.data["scope"]) == (
        None,
        world.org.pk,
        "organization",
    )


def test_the_verifier_refuses_an_event_of_another_organisation(world):
    """An event line naming another organisation than the manifest's scope is reported."""
    report = verify.Report()
    scope = {"workspace_id": None, "organization": {"id": world.org.pk}, "start": "", "end": "~"}
    document = {"organization_id": world.foreign_org.pk, "workspace_id": None, "occurred_at": "2026"}
    verify._check_event(report, scope, 1, {"sequence": 1, "canonical": json.dumps(document)}, None, None)
    assert any("organisation" in problem for problem in report.problems), report.problems


def test_the_command_builds_an_organisation_package_and_refuses_a_workspace_auditor(
    world, org_auditor, tmp_path
):
    _org_events(world.org, 1)
    ledger_seal_all()
    today = utc_today().isoformat()
    out = tmp_path / "org.zip"
    call_command("evidence_build", "--organization", "acme", "--from", today, "--to", today,
                 "--out", str(out), "--as", org_auditor.email, stdout=__import__("io").StringIO())  # fmt: skip
    assert out.is_file()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="organisation auditors"):
        call_command("evidence_build", "--organization", "acme", "--from", today, "--to", today,
                     "--out", str(tmp_path / "no.zip"), "--as", world.users["auditor"].email)  # fmt: skip
    assert AuditEvent.objects.filter(action="access.denied", actor_id=world.users["auditor"].pk).exists()


def test_an_organisation_order_is_built_and_downloaded(
    client, world, org_auditor, settings, tmp_path, django_capture_on_commit_callbacks
):
    """GIVEN the order form WHEN the organisation auditor orders the organisation's own events THEN
    the order has no workspace, is built, verifies, and downloads through its link."""
    settings.EVIDENCE_DIR = tmp_path / "evidence"
    _org_events(world.org, 2)
    client.force_login(org_auditor)
    add = reverse("admin:audit_evidenceorder_add")
    page = client.get(add).content.decode()
    assert 'value="organization"' in page
    assert f'value="{world.ws.pk}"' not in page
    today = utc_today().isoformat()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(add, {"workspace": "organization", "period_start": today, "period_end": today,
                                     "framework": "", "_save": "Save"})  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    order = EvidenceOrder.objects.get()
    assert (order.workspace_id, order.organization_id, order.state) == (None, world.org.pk, "ready")
    key = public_key_pem(load_signing_key().public_key()).encode()
    assert verify.verify_package(str(evidence_path(order)), public_key_pem=key).ok
    page = client.get(reverse("admin:audit_evidenceorder_change", args=[order.pk])).content.decode()
    assert "organisation events" in page
    from audit.evidence.links import evidence_link_issue

    download = client.get(evidence_link_issue(order=order, user=org_auditor))
    assert download.status_code == 200
    assert "acme-organisation" in download["Content-Disposition"]


def test_a_workspace_auditor_cannot_order_the_organisation_events(client, world):
    """The form does not offer the organisation to a workspace auditor; a forged post is a field
    error with the denial recorded, and the service refuses on its own."""
    auditor = world.users["auditor"]
    client.force_login(auditor)
    add = reverse("admin:audit_evidenceorder_add")
    assert 'value="organization"' not in client.get(add).content.decode()
    today = utc_today().isoformat()
    response = client.post(add, {"workspace": "organization", "period_start": today, "period_end": today,
                                 "framework": "", "_save": "Save"})  # fmt: skip
    assert response.status_code == 200
    assert "organisation auditors" in response.content.decode()
    assert not EvidenceOrder.objects.exists()
    assert AuditEvent.objects.filter(action="access.denied", actor_id=auditor.pk).exists()
    for value in ("9" * 30, "1; drop", "\u0661", "-1"):
        response = client.post(add, {"workspace": value, "period_start": today, "period_end": today,
                                     "framework": "", "_save": "Save"})  # fmt: skip
        assert response.status_code == 200, value
        assert not EvidenceOrder.objects.exists()
    with pytest.raises(AccessDenied):
        evidence_order_create(
            actor=auditor,
            workspace=None,
            organization=world.org,
            period_start=utc_today(),
            period_end=utc_today(),
        )


def test_an_empty_organisation_period_is_refused_clearly(world, org_auditor, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    with pytest.raises(EvidenceError, match=r"organisation.s own events of .globex."):
        evidence_package_build(
            actor=None, workspace=None, organization=world.foreign_org,
            start=now - timedelta(days=1), end=now, out=tmp_path / "x.zip",
        )  # fmt: skip
