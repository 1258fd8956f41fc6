"""Retention: policies from frameworks, legal holds, archive-then-prune that keeps every proof valid."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import InternalError, ProgrammingError, connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle
from audit.ledger_verification import ledger_verify
from audit.models import (
    AuditEvent,
    LedgerArchive,
    LedgerArchiveState,
    LegalHold,
    PrunedLeaf,
    RetentionPolicy,
    RowChange,
    SignedTreeHead,
)
from audit.proofs import event_inclusion
from audit.retention import prune as pruning
from audit.retention.archive import ArchiveError, archive_check
from audit.retention.policy import organization_retentions, workspace_retention
from audit.retention.prune import PruneRefusedError, prune_plan, prune_resume, prune_start
from audit.retention.services import legal_hold_place, legal_hold_release, retention_policy_set
from audit.sealing import ledger_seal, ledger_seal_all
from audit.signing import load_signing_key
from governance.access.decision import AccessDenied
from governance.tenancy.models import Role
from tests.audit.conftest import NOW, triggers_disabled
from tests.factories import (
    AuditEventFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    WorkspaceFactory,
)

# --- Batch proofs -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=70).flatmap(
        lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1)))
    )
)
def test_a_batch_proof_rebuilds_the_root_from_any_set_of_leaves(case):
    size, chosen = case
    leaves = [merkle.leaf_hash(str(i).encode()) for i in range(size)]
    indices = sorted(chosen)
    proof = merkle.batch_path(indices, size, lambda start, end: merkle._subtree_root(leaves, start, end))
    root = merkle.root_from_leaf_hashes(leaves)
    assert merkle.root_from_batch(indices, size, [leaves[i] for i in indices], proof) == root
    if indices:
        forged = [leaves[i] for i in indices]
        forged[0] = merkle.leaf_hash(b"forged")
        assert merkle.root_from_batch(indices, size, forged, proof) != root
        assert merkle.root_from_batch(indices, size, [leaves[i] for i in indices][:-1], proof) is None
    assert merkle.root_from_batch(indices, size, [leaves[i] for i in indices], [*proof, root]) is None


def test_a_batch_proof_of_a_run_of_leaves_is_logarithmic():
    size = 10_000
    leaves = [merkle.leaf_hash(str(i).encode()) for i in range(size)]
    indices = list(range(1_000, 6_000))
    proof = merkle.batch_path(indices, size, lambda start, end: merkle._subtree_root(leaves, start, end))
    assert len(proof) <= 2 * 14
    assert merkle.root_from_batch(
        indices, size, [leaves[i] for i in indices], proof
    ) == merkle.root_from_leaf_hashes(leaves)


# --- Policies ---------------------------------------------------------------------------------


def _member(workspace, role: str):
    """A user of ``workspace``'s organisation holding ``role`` (in the workspace, or organisation-wide)."""
    user = UserFactory(organization=workspace.organization)
    scoped = Role.objects.get(pk=role).scope == "workspace"
    MembershipFactory(
        user=user, workspace=workspace if scoped else None, organization=workspace.organization,
        role=Role.objects.get(pk=role),
    )  # fmt: skip
    return user


def test_the_longest_minimum_wins_and_says_why(db):
    workspace = WorkspaceFactory()
    officer = _member(workspace, "compliance_officer")
    assert workspace_retention(workspace).months == 12  # the platform's floor
    retention_policy_set(
        actor=officer, workspace=workspace, frameworks=["pci_dss", "eu_ai_act_high_risk"], minimum_months=None
    )
    retention = workspace_retention(workspace)
    assert retention.months == 12
    assert any("PCI DSS" in reason for reason in retention.deciding)
    retention_policy_set(actor=officer, workspace=workspace, frameworks=["sox", "hipaa"], minimum_months=24)
    retention = workspace_retention(workspace)
    assert retention.months == 84
    assert retention.deciding == (
        "SOX section 802 and SEC rule 17 CFR 210.2-06: audit records are retained for 7 years",
    )
    assert "7 years" in retention.describe()
    event = AuditEvent.objects.filter(action="retention.policy_changed").latest("id")
    assert event.data["retention_months"] == {"before": 12, "after": 84}
    assert event.workspace_id == workspace.pk


def test_an_organisation_keeps_its_own_events_as_long_as_its_longest_workspace(db):
    organization = OrganizationFactory()
    short, long = WorkspaceFactory(organization=organization), WorkspaceFactory(organization=organization)
    retention_policy_set(
        actor=_member(long, "compliance_officer"), workspace=long, frameworks=["hipaa"], minimum_months=None
    )
    retention = organization_retentions([organization.pk])[organization.pk]
    assert retention.months == 72
    assert long.name in retention.deciding[0]
    assert workspace_retention(short).months == 12


@pytest.mark.parametrize(
    ("frameworks", "minimum", "field"),
    [(["gdpr_forever"], None, "frameworks"), ([], 0, "minimum_months"), ([], 100_000, "minimum_months")],
)
def test_a_bad_policy_is_refused_on_its_field(db, frameworks, minimum, field):
    with pytest.raises(ValidationError) as refused:
        retention_policy_set(
            actor=UserFactory(), workspace=WorkspaceFactory(), frameworks=frameworks, minimum_months=minimum
        )
    assert field in refused.value.message_dict


def test_only_a_workspace_s_compliance_officers_set_its_policy_and_holds(db):
    workspace = WorkspaceFactory()
    for role in ("auditor", "workflow_builder", "platform_admin"):
        with pytest.raises(AccessDenied):
            retention_policy_set(
                actor=_member(workspace, role), workspace=workspace, frameworks=[], minimum_months=None
            )
    other = WorkspaceFactory()
    officer = _member(other, "compliance_officer")
    with pytest.raises(AccessDenied):
        legal_hold_place(
            actor=officer, organization=workspace.organization, workspace=workspace, reason="r", owner=officer
        )
    with pytest.raises(AccessDenied):  # the whole organisation is for its administrators
        legal_hold_place(actor=officer, organization=other.organization, reason="r", owner=officer)
    admin = _member(other, "platform_admin")
    hold = legal_hold_place(actor=admin, organization=other.organization, reason="Audit of 2026", owner=admin)
    with pytest.raises(AccessDenied):
        legal_hold_release(actor=officer, hold=hold, reason="done")
    assert LegalHold.objects.get(pk=hold.pk).active


def test_a_hold_needs_a_reason_and_a_coherent_range(db):
    workspace = WorkspaceFactory()
    officer = _member(workspace, "compliance_officer")
    with pytest.raises(ValidationError) as refused:
        legal_hold_place(
            actor=officer, organization=OrganizationFactory(), reason="  ", owner=officer,
            starts_on=date(2026, 2, 1), ends_on=date(2026, 1, 1), workspace=workspace,
        )  # fmt: skip
    assert {"reason", "ends_on", "workspace", "owner"} <= set(refused.value.message_dict)
    stranger = UserFactory()  # of another organisation
    with pytest.raises(ValidationError) as refused:
        legal_hold_place(
            actor=officer, organization=workspace.organization, workspace=workspace, reason="r",
            owner=stranger, subject=stranger,
        )  # fmt: skip
    assert {"owner", "subject"} <= set(refused.value.message_dict)
    assert not LegalHold.objects.exists()


# --- Archive then prune -----------------------------------------------------------------------


def _prune(**kwargs) -> LedgerArchive:
    plan = prune_plan(**kwargs)
    return prune_resume(run=prune_start(plan=plan, requested_by="test"))


def test_a_prune_takes_what_is_past_retention_and_keeps_the_rest(old_ledger):
    plan = prune_plan()
    counts = {line.label: line.chosen for line in plan.scopes}
    assert counts["workspace acme/plain"] == 12  # 40 months > 12
    assert counts["workspace acme/ledgers"] == 0  # SOX: 7 years
    assert counts["organisation acme (its own events)"] == 0  # as long as its SOX workspace
    assert counts["the platform's own events"] == 4
    run = _prune()
    assert run.state == LedgerArchiveState.DONE
    assert run.events_pruned == 16
    pruned = {event.pk for event in old_ledger["events"]["plain"] + old_ledger["events"]["platform"]}
    assert not AuditEvent.objects.filter(pk__in=pruned).exists()
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in old_ledger["events"]["sox"]]).count() == 12
    assert PrunedLeaf.objects.filter(archive=run).count() == 16
    recorded = AuditEvent.objects.get(action="retention.pruned")
    assert recorded.data["archive"] == str(run.uid)
    assert recorded.data["file_sha256"] == run.file_sha256
    assert AuditEvent.objects.filter(action="retention.prune_completed").exists()


def test_a_workspace_of_another_organisation_with_the_same_slug_keeps_its_own_retention(old_ledger):
    """GIVEN the SOX workspace ``acme/ledgers`` and a workspace ``globex/ledgers`` under the floor
    WHEN a prune runs THEN each scope takes its own workspace's events only: the SOX events stay."""
    WorkspaceFactory(organization=OrganizationFactory(slug="globex"), slug="ledgers")
    run = _prune()
    assert run.events_pruned == 16
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in old_ledger["events"]["sox"]]).count() == 12


def test_the_ledger_and_later_proofs_still_verify_after_a_prune(old_ledger):
    run = _prune()
    ledger_seal_all()
    ledger_seal(force_head=True)
    report = ledger_verify(parallel=False)
    assert report.ok, report.first
    assert report.pruned == run.events_pruned
    later = AuditEvent.objects.filter(sequence__isnull=False).order_by("-sequence")[5]
    assert event_inclusion(later).verified


def test_the_archive_verifies_offline_and_tampering_is_caught(old_ledger, tmp_path):
    run = _prune()
    path = old_ledger["dir"] / run.file_name
    manifest = archive_check(path, load_signing_key().public_key())
    assert manifest["events"] == run.events_total == 16
    with zipfile.ZipFile(path) as original:
        lines = original.read("events.jsonl").decode().splitlines()
        others = {name: original.read(name) for name in original.namelist() if name != "events.jsonl"}
    first = json.loads(lines[0])
    document = json.loads(first["canonical"])
    document["action"] = "workspace.deleted"
    first["canonical"] = json.dumps(document, separators=(",", ":"), sort_keys=True)
    lines[0] = json.dumps(first, sort_keys=True, separators=(",", ":"))
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as archive:
        archive.writestr("events.jsonl", "\n".join(lines) + "\n")
        for name, content in others.items():
            archive.writestr(name, content)
    with pytest.raises(ArchiveError, match="not the file the manifest signs"):
        archive_check(forged, load_signing_key().public_key())


def test_a_hold_keeps_its_events_and_an_explicit_prune_across_it_is_refused(old_ledger):
    user = _member(old_ledger["plain"], "compliance_officer")
    hold = legal_hold_place(
        actor=user, organization=old_ledger["organization"], workspace=old_ledger["plain"],
        reason="Litigation 2026-114: keep everything of this workspace", owner=user,
    )  # fmt: skip
    plan = prune_plan()
    line = next(line for line in plan.scopes if line.label == "workspace acme/plain")
    assert (line.chosen, line.held) == (0, 12)
    with pytest.raises(PruneRefusedError, match="Litigation 2026-114"):
        prune_plan(before=NOW - timedelta(days=500), workspace=old_ledger["plain"])
    run = _prune()
    assert run.events_pruned == 4  # the platform's own only
    assert AuditEvent.objects.filter(workspace=old_ledger["plain"], action="membership.created").count() == 22
    legal_hold_release(actor=user, hold=hold, reason="Matter closed")
    assert _prune().events_pruned == 12


def test_a_hold_placed_during_a_run_keeps_its_events(old_ledger):
    user = _member(old_ledger["plain"], "compliance_officer")
    run = prune_start(plan=prune_plan(), requested_by="test")
    legal_hold_place(
        actor=user, organization=old_ledger["organization"], workspace=old_ledger["plain"],
        starts_on=(NOW - timedelta(days=40 * 30)).date(), reason="Regulator's request", owner=user,
    )  # fmt: skip
    run = prune_resume(run=run)
    assert run.events_pruned == 4
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in old_ledger["events"]["plain"]]).count() == 12


def test_an_explicit_prune_past_the_retention_boundary_is_refused_with_the_reason(old_ledger):
    with pytest.raises(PruneRefusedError, match=r"workspace acme/ledgers keeps its events 7 years \(SOX"):
        prune_plan(before=NOW - timedelta(days=400), workspace=old_ledger["sox"])
    with pytest.raises(PruneRefusedError, match="workspace acme/plain keeps its events 1 year"):
        prune_plan(before=NOW - timedelta(days=300), workspace=old_ledger["plain"])
    plan = prune_plan(before=NOW - timedelta(days=400), workspace=old_ledger["plain"])
    assert plan.total == 12


def test_an_interrupted_run_resumes_to_the_same_end(old_ledger, monkeypatch):
    run = prune_start(plan=prune_plan(), requested_by="test")
    calls = []
    original = pruning._prune_batch

    def crash_after_first(run, sequences):
        if calls:
            raise RuntimeError("worker killed")
        calls.append(sequences)
        return original(run, sequences[:5])

    monkeypatch.setattr(pruning, "BATCH", 5)
    monkeypatch.setattr(pruning, "_prune_batch", crash_after_first)
    with pytest.raises(RuntimeError):
        prune_resume(run=run)
    run.refresh_from_db()
    assert run.state == LedgerArchiveState.PRUNING
    assert PrunedLeaf.objects.count() == 5
    monkeypatch.setattr(pruning, "_prune_batch", original)
    run = prune_resume(run=run)
    assert run.state == LedgerArchiveState.DONE
    assert run.events_pruned == 16
    assert ledger_verify(parallel=False).ok


def test_a_second_run_waits_for_the_unfinished_one(old_ledger):
    prune_start(plan=prune_plan(), requested_by="test")
    with pytest.raises(PruneRefusedError, match="unfinished"):
        prune_start(plan=prune_plan(), requested_by="test")


def test_nothing_to_prune_is_said(old_ledger):
    with pytest.raises(PruneRefusedError, match="Nothing to prune"):
        prune_start(plan=prune_plan(workspace=old_ledger["sox"]), requested_by="test")


def test_nothing_is_pruned_beyond_what_every_siem_sink_acknowledged(old_ledger):
    from audit.siem.models import Sink, SinkCursor

    sink = Sink.objects.create(
        organization=old_ledger["organization"], name="s", kind="webhook", endpoint="https://x"
    )
    SinkCursor.objects.create(sink=sink, position=10)
    plan = prune_plan()
    assert plan.bound == 10
    assert "SIEM" in plan.bound_reason
    chosen = pruning.chosen_events(plan.criteria(), plan.bound).values_list("sequence", flat=True)
    assert chosen
    assert all(sequence <= 10 for sequence in chosen)
    Sink.objects.create(
        organization=old_ledger["organization"], name="new", kind="webhook", endpoint="https://y"
    )
    assert prune_plan().bound == 0  # a sink not pumped yet has acknowledged nothing


def test_the_command_shows_the_plan_then_prunes_with_yes(old_ledger, capsys):
    call_command("ledger_prune")
    shown = capsys.readouterr().out
    assert "workspace acme/plain: 12 to prune" in shown
    assert "Nothing done" in shown
    assert not LedgerArchive.objects.exists()
    call_command("ledger_prune", "--yes")
    done = capsys.readouterr().out
    assert "Pruned 16 events" in done
    assert "pruning: 16/16 (100%)" in done  # progress is shown as it goes
    with pytest.raises(CommandError, match="not a day"):
        call_command("ledger_prune", "--before", "yesterday")
    with pytest.raises(CommandError, match="no workspace"):
        call_command("ledger_prune", "--workspace", "acme/nope")


# --- What the database enforces ---------------------------------------------------------------


def test_an_event_cannot_be_deleted_unless_its_leaf_is_kept(old_ledger):
    event = old_ledger["events"]["plain"][0]
    with pytest.raises((InternalError, ProgrammingError), match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    run = _prune()
    with pytest.raises((InternalError, ProgrammingError), match="append-only"), transaction.atomic():
        PrunedLeaf.objects.filter(archive=run).update(leaf_hash=b"\0" * 32)
    with pytest.raises((InternalError, ProgrammingError), match="append-only"), transaction.atomic():
        PrunedLeaf.objects.filter(archive=run).delete()


def test_audit_prune_refuses_a_run_without_its_sealed_record_and_recent_events(old_ledger):
    run = prune_start(plan=prune_plan(), requested_by="test")
    sequences = [event.sequence for event in AuditEvent.objects.filter(workspace=old_ledger["plain"])]
    with pytest.raises((InternalError, ProgrammingError), match="may not prune"), transaction.atomic():
        pruning._prune_batch(run, sequences)
    run = prune_resume(run=run)
    LedgerArchive.objects.filter(pk=run.pk).update(state=LedgerArchiveState.PRUNING)
    recent = list(
        AuditEvent.objects.filter(workspace=old_ledger["plain"], sequence__isnull=False).values_list(
            "sequence", flat=True
        )
    )
    assert len(recent) == 10
    assert pruning._prune_batch(run, recent) == 0  # younger than six months: never
    assert AuditEvent.objects.filter(sequence__in=recent).count() == 10


def test_the_application_role_prunes_only_through_audit_prune(old_ledger):
    from audit.triggers import privileges_sql

    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE portal_prune_test NOLOGIN")
        cursor.execute(privileges_sql("portal_prune_test"))
        cursor.execute("SET ROLE portal_prune_test")
        try:
            for statement in (
                "DELETE FROM audit_auditevent",
                "INSERT INTO audit_prunedleaf (sequence, leaf_hash, chain_hash, archive_id) VALUES (1, '', '', 1)",
                "UPDATE audit_prunedleaf SET leaf_hash = ''",
            ):
                cursor.execute("SAVEPOINT attempt")
                with pytest.raises(ProgrammingError, match="permission denied"):
                    cursor.execute(statement)
                cursor.execute("ROLLBACK TO SAVEPOINT attempt")
        finally:
            cursor.execute("RESET ROLE")


# --- What the verifier catches ----------------------------------------------------------------


def test_a_kept_leaf_that_no_sealed_record_vouches_for_is_reported(old_ledger):
    run = _prune()
    with triggers_disabled() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET data = data || '{\"archive\": \"x\"}' WHERE action = 'retention.pruned'"
        )
    problem = ledger_verify(parallel=False).first
    assert problem is not None
    assert "without an archive run" in problem.reason
    assert problem.sequence == PrunedLeaf.objects.filter(archive=run).order_by("sequence").first().sequence


def test_a_changed_kept_leaf_breaks_the_chain(old_ledger):
    _prune()
    victim = PrunedLeaf.objects.order_by("sequence")[3]
    with triggers_disabled() as cursor:
        cursor.execute(
            "UPDATE audit_prunedleaf SET leaf_hash = %s WHERE sequence = %s", [b"\1" * 32, victim.sequence]
        )
    problem = ledger_verify(parallel=False).first
    assert problem is not None
    assert problem.sequence == victim.sequence


def test_a_deleted_kept_leaf_is_a_gap(old_ledger):
    _prune()
    victim = PrunedLeaf.objects.order_by("sequence")[2]
    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM audit_prunedleaf WHERE sequence = %s", [victim.sequence])
    problem = ledger_verify(parallel=False).first
    assert problem is not None
    assert problem.sequence == victim.sequence
    assert "missing" in problem.reason


def test_pruned_events_take_their_captured_row_changes_with_them(old_ledger):
    event = old_ledger["events"]["plain"][1]
    with triggers_disabled() as cursor:
        cursor.execute(
            "INSERT INTO audit_rowchange (table_name, operation, row_id, old, new, db_user, application, actor_hint,"
            " transaction_id, occurred_at, event_id) VALUES ('tenancy_workspace', 'UPDATE', '1', '{}', '{}', 'x', '',"
            " '', 1, now(), %s)",
            [event.pk],
        )
    _prune()
    assert not RowChange.objects.filter(event_id=event.pk).exists()
    assert SignedTreeHead.objects.exists()


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2026, 3, 31, 9, tzinfo=UTC), 1, datetime(2026, 2, 28, 9, tzinfo=UTC)),
        (datetime(2024, 3, 31, tzinfo=UTC), 1, datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), 84, datetime(2019, 1, 15, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), 13, datetime(2024, 12, 15, tzinfo=UTC)),
    ],
)
def test_months_are_calendar_months(moment, months, expected):
    from audit.retention.policy import months_before

    assert months_before(moment, months) == expected


def test_a_workspace_of_the_same_name_in_another_organisation_keeps_its_own_retention(old_ledger):
    other = WorkspaceFactory(organization=OrganizationFactory(slug="globex"), slug="plain")
    RetentionPolicy.objects.create(workspace=other, frameworks=["hipaa"])
    theirs = [
        AuditEventFactory(workspace=other, occurred_at=NOW - timedelta(days=40 * 30 - index))
        for index in range(3)
    ]
    ledger_seal_all()
    ledger_seal(force_head=True)
    run = prune_start(plan=prune_plan(), requested_by="test")
    run = prune_resume(run=run)
    assert run.events_pruned == 16
    assert AuditEvent.objects.filter(pk__in=[event.pk for event in theirs]).count() == 3
