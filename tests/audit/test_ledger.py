"""The ledger: sealing, immutability, and detection of every kind of tampering."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle
from audit.ledger_verification import ledger_verify
from audit.models import AuditEvent, LedgerState, SignedTreeHead
from audit.sealing import chain_hash, ledger_seal, ledger_seal_all
from audit.services import AuditError, audit_event_record, audit_events_record
from audit.signing import (
    TreeHeadStatement,
    key_id_of,
    load_signing_key,
    sign_statement,
)
from tests.audit.conftest import record, triggers_disabled


def sealed_ledger(events: int = 30, heads_every: int = 10) -> None:
    """A ledger of ``events`` sealed events with a signed head every ``heads_every`` events."""
    for start in range(0, events, heads_every):
        record(min(heads_every, events - start))
        ledger_seal(force_head=True)


def _verify(**kwargs):
    return ledger_verify(**kwargs)


# --- Sealing -------------------------------------------------------------------------------


def test_sealing_gives_gapless_sequences_leaf_and_chain_hashes(db):
    record(25)
    result = ledger_seal_all()
    assert result.sealed == 25
    rows = list(
        AuditEvent.objects.order_by("sequence").values_list(
            "sequence", "canonical", "leaf_hash", "chain_hash"
        )
    )
    assert [row[0] for row in rows] == list(range(1, 26))
    chain = b""
    for _, canonical, leaf, stored_chain in rows:
        assert bytes(leaf) == merkle.leaf_hash(bytes(canonical))
        chain = chain_hash(chain, bytes(leaf))
        assert bytes(stored_chain) == chain
    head = SignedTreeHead.objects.get()
    assert head.tree_size == 25
    assert bytes(head.root_hash) == merkle.root_from_leaf_hashes([bytes(row[2]) for row in rows])
    assert LedgerState.objects.get().tree_size == 25


def test_sealing_in_small_batches_equals_one_batch(db):
    record(37)
    while ledger_seal(batch_size=5, sign=False).sealed:
        pass
    ledger_seal(force_head=True)
    assert _verify().ok
    assert AuditEvent.objects.filter(sequence__isnull=True).count() == 0


def test_heads_are_signed_at_most_once_per_interval_while_there_is_work(db):
    record(3)
    first = ledger_seal()
    assert first.head is not None
    record(3)
    second = ledger_seal()  # within the same second: sealed, but no new head yet
    assert second.sealed == 3
    assert second.head is None
    with override_settings(LEDGER_HEAD_INTERVAL_SECONDS=0):
        third = ledger_seal()
        assert third.head is not None
        assert third.head.tree_size == 6
        assert ledger_seal().head is None  # nothing new: no head


@pytest.mark.django_db(transaction=True)
def test_an_event_that_commits_late_is_sealed_not_skipped():
    """GIVEN an event inserted early (lower id) whose transaction commits after a sealing pass
    THEN the next pass seals it, with the next sequence number; nothing is skipped."""
    inserted, release = threading.Event(), threading.Event()
    late_id = []

    def slow_request():
        try:
            with transaction.atomic():
                late_id.append(
                    audit_event_record(action="workspace.updated", actor=None, data={"late": True}).pk
                )
                inserted.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_request)
    thread.start()
    assert inserted.wait(timeout=30)
    record(2)  # later ids, committed first
    assert ledger_seal().sealed == 2
    release.set()
    thread.join()
    assert ledger_seal(force_head=True).sealed == 1
    late = AuditEvent.objects.get(pk=late_id[0])
    assert late.sequence == 3
    assert AuditEvent.objects.filter(sequence__lt=3).values_list("id", flat=True).order_by("id")[0] > late.pk
    assert _verify().ok


# --- Immutability ----------------------------------------------------------------------------


def test_sealed_events_cannot_be_updated_or_deleted(db):
    sealed_ledger(5, 5)
    event = AuditEvent.objects.get(sequence=3)
    with pytest.raises((InternalError, ProgrammingError), match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="user.created")
    with pytest.raises((InternalError, ProgrammingError), match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises((InternalError, ProgrammingError), match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(sequence=99)  # no re-sealing
    with pytest.raises((InternalError, ProgrammingError), match="append-only"), transaction.atomic():
        SignedTreeHead.objects.update(tree_size=1)
    with pytest.raises((InternalError, ProgrammingError), match="append-only"), transaction.atomic():
        SignedTreeHead.objects.all().delete()


def test_unsealed_events_cannot_be_changed_either(db):
    record(1)
    event = AuditEvent.objects.get()
    with pytest.raises((InternalError, ProgrammingError), match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="user.created")
    with pytest.raises((InternalError, ProgrammingError), match="append-only"), transaction.atomic():
        # The sealing step may not smuggle in a change of content.
        AuditEvent.objects.filter(pk=event.pk).update(sequence=1, leaf_hash=b"x", data={"evil": True})


def test_least_privilege_role_cannot_truncate_delete_or_rewrite(db):
    """The production database role (not the owner) can append and seal, nothing else."""
    from audit.triggers import privileges_sql

    sealed_ledger(3, 3)
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE portal_app_test NOLOGIN")
        cursor.execute(privileges_sql("portal_app_test"))
        cursor.execute("SET ROLE portal_app_test")
        try:
            for statement in (
                "TRUNCATE audit_auditevent",
                "TRUNCATE audit_signedtreehead",
                "DELETE FROM audit_auditevent",
                "UPDATE audit_auditevent SET action = 'x'",
            ):
                cursor.execute("SAVEPOINT attempt")
                with pytest.raises(ProgrammingError, match="permission denied"):
                    cursor.execute(statement)
                cursor.execute("ROLLBACK TO SAVEPOINT attempt")
            cursor.execute("SELECT count(*) FROM audit_auditevent")
            assert cursor.fetchone()[0] == 3
        finally:
            cursor.execute("RESET ROLE")


def test_the_ledger_admin_is_read_only_for_everyone(world, client):
    from django.urls import reverse

    event = world.events["own"]
    client.force_login(world.users["workspace_owner"])
    response = client.post(reverse("admin:audit_auditevent_change", args=[event.pk]), {"action": "x"})
    assert response.status_code == 403
    assert (
        client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code
        == 403
    )


# --- Verification: no false alarm, and every attack detected --------------------------------------


def test_clean_ledger_verifies(db):
    sealed_ledger(30, 10)
    record(4)  # unsealed events are pending, not a problem
    report = _verify()
    assert report.ok, report.problems
    assert report.events == 30
    assert report.heads == 3
    assert report.unsealed == 4


def _first(report):
    assert not report.ok, "tampering was not detected"
    return report.first


def test_detects_an_edited_field(db):
    sealed_ledger(30, 10)
    with triggers_disabled() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'user.deactivated' WHERE sequence = 17")
    problem = _first(_verify())
    assert problem.sequence == 17
    assert "field was changed" in problem.reason


def test_detects_edited_content_with_consistent_columns(db):
    """The attacker rewrites the canonical bytes too: the leaf hash no longer matches."""
    sealed_ledger(30, 10)
    event = AuditEvent.objects.get(sequence=12)
    forged = bytes(event.canonical).replace(b'"n":1', b'"n":7')
    with triggers_disabled() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET canonical = %s, data = %s WHERE sequence = 12", [forged, '{"n": 7}']
        )
    problem = _first(_verify())
    assert problem.sequence == 12
    assert "leaf hash" in problem.reason


def _rehash_everything(cursor) -> None:
    """What a thorough attacker does after tampering: recompute every leaf and chain hash."""
    cursor.execute("SELECT id, canonical FROM audit_auditevent WHERE sequence IS NOT NULL ORDER BY sequence")
    chain = b""
    for number, (event_id, canonical) in enumerate(cursor.fetchall(), start=1):
        leaf = merkle.leaf_hash(bytes(canonical))
        chain = chain_hash(chain, leaf)
        cursor.execute(
            "UPDATE audit_auditevent SET sequence = %s, leaf_hash = %s, chain_hash = %s WHERE id = %s",
            [-number, leaf, chain, event_id],
        )
    cursor.execute("UPDATE audit_auditevent SET sequence = -sequence WHERE sequence < 0")


def test_detects_edited_content_even_when_all_hashes_are_recomputed(db):
    sealed_ledger(30, 10)
    event = AuditEvent.objects.get(sequence=5)
    forged = bytes(event.canonical).replace(b'"n":4', b'"n":9')
    with triggers_disabled() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET canonical = %s, data = %s WHERE id = %s",
            [forged, '{"n": 9}', event.pk],
        )
        _rehash_everything(cursor)
    problem = _first(_verify())
    assert problem.head == 1
    assert "does not match the events" in problem.reason


def test_detects_a_deleted_event(db):
    sealed_ledger(30, 10)
    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 21")
    problem = _first(_verify())
    assert problem.sequence == 21
    assert "missing" in problem.reason


def test_detects_an_inserted_event(db):
    sealed_ledger(30, 10)
    record(1)
    intruder = AuditEvent.objects.get(sequence__isnull=True)
    with triggers_disabled() as cursor:
        cursor.execute("UPDATE audit_auditevent SET sequence = sequence + 1000 WHERE sequence >= 8")
        cursor.execute("UPDATE audit_auditevent SET sequence = sequence - 999 WHERE sequence >= 1008")
        cursor.execute("UPDATE audit_auditevent SET sequence = 8 WHERE id = %s", [intruder.pk])
        _rehash_everything(cursor)
    problem = _first(_verify())
    assert problem.head == 1
    assert problem.sequence == 10


def test_detects_two_swapped_events(db):
    sealed_ledger(30, 10)
    with triggers_disabled() as cursor:
        cursor.execute("UPDATE audit_auditevent SET sequence = -1 WHERE sequence = 14")
        cursor.execute("UPDATE audit_auditevent SET sequence = 14 WHERE sequence = 15")
        cursor.execute("UPDATE audit_auditevent SET sequence = 15 WHERE sequence = -1")
    problem = _first(_verify())
    assert problem.sequence == 14
    assert "chain" in problem.reason or "leaf" in problem.reason


def test_detects_swapped_events_with_recomputed_hashes(db):
    sealed_ledger(30, 10)
    with triggers_disabled() as cursor:
        cursor.execute("UPDATE audit_auditevent SET sequence = -1 WHERE sequence = 14")
        cursor.execute("UPDATE audit_auditevent SET sequence = 14 WHERE sequence = 15")
        cursor.execute("UPDATE audit_auditevent SET sequence = 15 WHERE sequence = -1")
        _rehash_everything(cursor)
    problem = _first(_verify())
    assert problem.head == 2


def test_detects_a_cut_off_tail(db):
    sealed_ledger(30, 10)
    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence > 27")
    problem = _first(_verify())
    assert problem.sequence == 28
    assert "cut off" in problem.reason


def test_detects_a_replaced_head(db):
    sealed_ledger(30, 10)
    with triggers_disabled() as cursor:
        cursor.execute("UPDATE audit_signedtreehead SET root_hash = %s WHERE number = 2", [b"\x00" * 32])
    problem = _first(_verify())
    assert problem.head == 2
    assert "signature" in problem.reason


def test_detects_a_removed_middle_head(db):
    sealed_ledger(30, 10)
    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM audit_signedtreehead WHERE number = 2")
    problem = _first(_verify())
    assert problem.head == 2
    assert "missing" in problem.reason


def test_detects_a_rollback_against_a_remembered_head(db):
    sealed_ledger(30, 10)
    latest = SignedTreeHead.objects.get(number=3)
    trusted = {"number": 3, "tree_size": 30, "root_hash": bytes(latest.root_hash).hex()}
    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM audit_signedtreehead WHERE number = 3")
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence > 20")
    assert ledger_verify().ok  # self-consistent after a clean rollback ...
    problem = _first(_verify(trusted_head=trusted))  # ... but not to someone who saw head #3
    assert problem.head == 3
    assert "rolled back" in problem.reason


@override_settings(LEDGER_HEAD_GRACE_SECONDS=0)
def test_detects_removed_latest_heads_from_the_unsigned_tail(db):
    sealed_ledger(30, 10)
    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM audit_signedtreehead WHERE number = 3")
    problem = _first(_verify())
    assert problem.sequence == 21
    assert "rolled back" in problem.reason


def test_detects_a_ledger_rebuilt_with_fresh_hashes(db):
    """The attacker rewrites history, rehashes everything and signs new heads with their own key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    sealed_ledger(30, 10)
    forger = Ed25519PrivateKey.generate()
    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 3")
        _rehash_everything(cursor)
        cursor.execute("SELECT leaf_hash FROM audit_auditevent ORDER BY sequence")
        leaves = [bytes(row[0]) for row in cursor.fetchall()]
        cursor.execute("SELECT number, tree_size, issued_at FROM audit_signedtreehead ORDER BY number")
        for number, size, issued_at in cursor.fetchall():
            size = min(size, len(leaves))
            statement = TreeHeadStatement(
                number,
                size,
                merkle.root_from_leaf_hashes(leaves[:size]),
                issued_at,
                key_id_of(forger.public_key()),
            )
            cursor.execute(
                "UPDATE audit_signedtreehead SET tree_size = %s, root_hash = %s, key_id = %s, signature = %s "
                "WHERE number = %s",
                [size, statement.root_hash, statement.key_id, sign_statement(statement, forger), number],
            )
    problem = _first(_verify())
    assert problem.head == 1
    assert "unknown key" in problem.reason
    # Even a forger who reuses our key id cannot produce our signature.
    with triggers_disabled() as cursor:
        cursor.execute(
            "UPDATE audit_signedtreehead SET key_id = %s", [key_id_of(load_signing_key().public_key())]
        )
    assert "invalid signature" in _first(_verify()).reason


# --- The command ---------------------------------------------------------------------------------


def test_audit_verify_command_exit_codes_and_json(db, tmp_path, capsys):
    import json

    sealed_ledger(10, 5)
    call_command("audit_verify", "--json", "--no-state")
    report = json.loads(capsys.readouterr().out)
    assert report["ok"]
    assert report["events_verified"] == 10
    assert report["first_problem"] is None
    with triggers_disabled() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_label = 'mallory' WHERE sequence = 4")
    with pytest.raises(SystemExit) as exited:
        call_command("audit_verify", "--no-state")
    assert exited.value.code == 1
    assert "sequence 4" in capsys.readouterr().err


def test_audit_verify_remembers_the_last_head(db, tmp_path, capsys):
    state = tmp_path / "head.json"
    sealed_ledger(10, 5)
    call_command("audit_verify", "--state", str(state))
    assert '"number": 2' in state.read_text()
    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM audit_signedtreehead WHERE number = 2")
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence > 5")
    with pytest.raises(SystemExit):
        call_command("audit_verify", "--state", str(state))
    assert "rolled back" in capsys.readouterr().err


# --- Bad input at the service boundary ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "workflow.teleported"}, "Unknown audit action"),
        ({"action": "workspace.updated", "data": {"blob": "x" * 70_000}}, "limit is"),
        ({"action": "workspace.updated", "data": {"ratio": float("nan")}}, "canonicalised"),
        ({"action": "workspace.updated", "data": {"big": 2**60}}, "canonicalised"),
    ],
)
def test_bad_events_are_refused_with_a_clear_error(db, kwargs, message):
    with pytest.raises(AuditError, match=message), transaction.atomic():
        audit_event_record(actor=None, **kwargs)
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_events_outside_a_transaction_are_refused():
    with pytest.raises(AuditError, match="inside the transaction"):
        audit_event_record(action="workspace.updated", actor=None, require_transaction=True)


def test_many_events_in_one_insert_are_the_events_one_by_one_would_be(db):
    """GIVEN 1,203 events recorded together (three INSERTs) WHEN the ledger is sealed and verified
    THEN each row holds what ``audit_event_record`` would have written, in the given order, and
    the chain verifies."""
    import audit.services as services

    given = [{"action": "workspace.updated", "actor": None, "data": {"n": n}} for n in range(1203)]
    with transaction.atomic():
        recorded = audit_events_record(given)
        single = audit_event_record(action="workspace.updated", actor=None, data={"n": -1})
    assert len(given) > services.INSERT_CHUNK
    assert [event.data["n"] for event in recorded] == list(range(1203))
    rows = list(AuditEvent.objects.order_by("id"))
    assert [row.pk for row in rows[:-1]] == [event.pk for event in recorded]
    assert [row.data["n"] for row in rows] == [*range(1203), -1]
    for row, event in zip(rows, recorded, strict=False):
        assert bytes(row.canonical) == bytes(event.canonical)
    assert rows[-1].pk == single.pk
    ledger_seal_all()
    assert ledger_verify().ok


def test_one_bad_event_among_many_writes_none(db):
    given = [
        {"action": "workspace.updated", "actor": None, "data": {"n": 1}},
        {"action": "workspace.updated", "actor": None, "data": {"ratio": float("nan")}},
    ]
    with pytest.raises(AuditError, match="canonicalised"), transaction.atomic():
        audit_events_record(given)
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_many_events_outside_a_transaction_are_refused():
    with pytest.raises(AuditError, match="inside the transaction"):
        audit_events_record([{"action": "workspace.updated", "actor": None}])


def test_sequence_is_unique(db):
    sealed_ledger(2, 2)
    with triggers_disabled() as cursor, pytest.raises(IntegrityError), transaction.atomic():
        cursor.execute("UPDATE audit_auditevent SET sequence = 1 WHERE sequence = 2")


@pytest.mark.django_db(transaction=True)
def test_parallel_column_check_on_its_own_connection():
    """Outside a transaction the column check runs on a second connection, beside the hashing."""
    sealed_ledger(20, 10)
    assert ledger_verify(parallel=True).ok
    with triggers_disabled() as cursor:
        cursor.execute("UPDATE audit_auditevent SET target_label = 'forged' WHERE sequence = 7")
    report = ledger_verify(parallel=True)
    assert report.first.sequence == 7
    assert "field was changed" in report.first.reason


def test_the_search_document_is_written_once_and_cannot_be_changed(db):
    record(1, data={"note": "quarterly payroll"})
    event = AuditEvent.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("SELECT search::text FROM audit_auditevent WHERE id = %s", [event.pk])
        assert "payroll" in cursor.fetchone()[0]
    with (
        pytest.raises((InternalError, ProgrammingError), match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE audit_auditevent SET sequence = 1, search = to_tsvector('hidden') WHERE id = %s",
            [event.pk],
        )


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(document=JSON_VALUES)
def test_fast_canonical_form_is_byte_identical_to_rfc8785(document):
    """The C-encoder path gives exactly the reference RFC 8785 bytes, whatever the document."""
    import rfc8785

    from audit.canonical import CanonicalError, canonicalize

    try:
        expected = rfc8785.dumps(document)
    except Exception:  # the reference refuses it (e.g. an integer beyond 2^53): so must we
        with pytest.raises(CanonicalError):
            canonicalize(document)
        return
    assert canonicalize(document) == expected
