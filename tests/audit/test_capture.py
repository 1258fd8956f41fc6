"""Completeness: every write to a governed table is captured, whoever wrote it, and reconciled with
the services' events; authentication events recorded."""

from __future__ import annotations

import contextlib
from unittest import mock

import pytest
from django.db import ProgrammingError, connection, transaction
from django.urls import reverse

from audit.ledger_verification import ledger_verify
from audit.models import AuditEvent, RowChange
from audit.sealing import ledger_seal_all
from audit.services import AuditError, audit_event_record, rows_where
from audit.triggers import CAPTURE_PARTS, privileges_sql, table_target_type
from governance.tenancy import services
from governance.tenancy.models import Membership, Workspace
from tests.conftest import PASSWORD
from tests.factories import UserFactory
from workflows.changes.models import Workflow

_mark = {"sequence": 0}


def _row_events(table: str):
    """Row-change events of ``table`` recorded after the ``drained`` fixture ran."""
    return AuditEvent.objects.filter(
        action="db.row_changed", target_type=table, sequence__gt=_mark["sequence"]
    ).order_by("sequence")


@pytest.fixture
def drained(world):
    """The world's own setup rows are captured too; seal them first and look only past them."""
    _mark["sequence"] = ledger_seal_all().tree_size
    return world


def test_queryset_update_outside_services_lands_in_the_ledger(drained):
    world = drained
    membership = world.memberships["viewer"]
    Membership.objects.filter(pk=membership.pk).update(role_id="workspace_owner")
    ledger_seal_all()
    event = _row_events("tenancy_membership").get()
    assert event.target_id == str(membership.pk)
    assert event.data["operation"] == "UPDATE"
    assert event.data["before"]["role_id"] == "viewer"
    assert event.data["after"]["role_id"] == "workspace_owner"
    assert event.data["db_user"]
    assert ledger_verify().ok
    capture = RowChange.objects.get(
        table_name="tenancy_membership", row_id=str(membership.pk), operation="UPDATE"
    )
    assert capture.event_id == event.pk  # the capture stays, linked to the event that records it
    assert not RowChange.objects.filter(event__isnull=True).exists()  # nothing left waiting


def test_bulk_create_and_raw_sql_are_captured_row_by_row(drained):
    world = drained
    Workspace.objects.bulk_create(
        [
            Workspace(organization=world.org, name=f"Bulk {i}", slug=f"bulk-{i}", data_region="EU")
            for i in range(3)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tenancy_workspace SET time_zone = 'Europe/Paris' WHERE slug LIKE 'bulk-%'")
        cursor.execute("DELETE FROM tenancy_workspace WHERE slug = 'bulk-0'")
    ledger_seal_all()
    operations = [event.data["operation"] for event in _row_events("tenancy_workspace")]
    assert operations.count("INSERT") == 3
    assert operations.count("UPDATE") == 3
    assert operations.count("DELETE") == 1


def test_service_writes_are_captured_and_linked_not_recorded_twice(drained):
    """GIVEN a normal service call WHEN the sealer runs THEN the ledger holds the service's event
    and no db.row_changed, and the service's write was captured all the same, linked to it."""
    world = drained
    membership = services.membership_create(
        actor=world.users["workspace_owner"],
        user=world.newcomers[world.org.pk],
        role="viewer",
        workspace=world.ws,
    )
    ledger_seal_all()
    created = AuditEvent.objects.get(action="membership.created", target_id=str(membership.pk))
    assert not _row_events("tenancy_membership").exists()
    capture = RowChange.objects.get(table_name="tenancy_membership", row_id=str(membership.pk))
    assert capture.operation == "INSERT"
    assert capture.event_id == created.pk


def test_password_hashes_never_reach_the_ledger(drained):
    user = UserFactory(organization=drained.org)
    user.set_password("another correct horse battery")
    user.save()
    type(user).objects.filter(pk=user.pk).update(display_name="Renamed")
    ledger_seal_all()
    events = list(_row_events("accounts_user"))
    assert events
    for event in events:
        assert (event.data["after"] or {}).get("password") in (None, "[hidden]", "[hidden: changed]")
        assert (event.data["before"] or {}).get("password") in (None, "[hidden]", "[hidden: changed]")
        assert b"md5$" not in bytes(event.canonical)
    assert not RowChange.objects.filter(new__password__startswith="md5$").exists()


def test_a_raw_write_of_a_password_hash_is_captured_without_the_hash(drained):
    """GIVEN a writer who sets a person's password hash by hand (a hash whose password they
    know) WHEN the sealer runs THEN the ledger records that the password changed, never the
    hash."""
    user = drained.users["viewer"]
    type(user).objects.filter(pk=user.pk).update(password="md5$known$0123456789abcdef")
    ledger_seal_all()
    event = _row_events("accounts_user").get()
    assert event.data["before"]["password"] == "[hidden: changed]"
    assert event.data["after"]["password"] == "[hidden: changed]"
    assert b"md5$known" not in bytes(event.canonical)


def test_an_update_that_changes_nothing_of_note_is_not_recorded(drained):
    user = drained.users["viewer"]
    type(user).objects.filter(pk=user.pk).update(last_login=user.date_joined)
    ledger_seal_all()
    assert not _row_events("accounts_user").exists()


def test_login_success_failure_and_logout_are_recorded(world, client):
    client.post(reverse("account_login"), {"login": "viewer@acme.test", "password": "wrong password"})
    failed = AuditEvent.objects.get(action="login.failed")
    assert failed.outcome == "failed"
    assert failed.data["reason"] == "bad_credentials"
    assert failed.target_id == str(world.users["viewer"].pk)
    assert b"wrong password" not in bytes(failed.canonical)

    client.post(reverse("account_login"), {"login": "viewer@acme.test", "password": PASSWORD})
    login = AuditEvent.objects.get(action="login.succeeded")
    assert login.actor_id == world.users["viewer"].pk
    assert len(login.data["session"]) == 16

    client.post(reverse("account_logout"))
    logout = AuditEvent.objects.get(action="auth.logout")
    assert logout.data["session"] == login.data["session"]


# --- The backstop no writer can switch off -------------------------------------------------------

APP_ROLE = "portal_app_capture_test"


@contextlib.contextmanager
def as_application_role():
    """Act as the production database role: not the owner of the tables, with the grants of
    ``privileges_sql`` on the ledger (and, as an operator would grant, DML on every other table).
    The role is created inside the test's transaction, so it is gone when the test ends."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {APP_ROLE} NOLOGIN")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
        cursor.execute(privileges_sql(APP_ROLE))
        cursor.execute(f"SET ROLE {APP_ROLE}")
        try:
            yield cursor
        finally:
            cursor.execute("RESET ROLE")


def test_raw_escalation_with_the_old_marker_is_captured_and_sealed_as_the_application_role(drained):
    """GIVEN the application role WHEN it sets portal.audited and raw-UPDATEs a viewer's
    membership to workspace owner THEN the write is captured, and after sealing (also as that
    role) the ledger names the row in a db.row_changed event with the before and after role."""
    membership = drained.memberships["viewer"]
    with as_application_role() as cursor:
        cursor.execute("SELECT set_config('portal.audited', 'on', true)")
        cursor.execute(
            "UPDATE tenancy_membership SET role_id = 'workspace_owner' WHERE id = %s", [membership.pk]
        )
        result = ledger_seal_all()
    assert result.row_changes >= 1
    event = _row_events("tenancy_membership").get()
    assert event.target_id == str(membership.pk)
    assert event.data["before"]["role_id"] == "viewer"
    assert event.data["after"]["role_id"] == "workspace_owner"
    assert event.data["db_user"] == APP_ROLE
    assert event.sequence is not None  # sealed into the tree
    capture = RowChange.objects.get(
        table_name="tenancy_membership", row_id=str(membership.pk), operation="UPDATE"
    )
    assert capture.event_id == event.pk
    assert ledger_verify().ok


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM audit_rowchange",
        "UPDATE audit_rowchange SET event_id = NULL",
        "UPDATE audit_rowchange SET new = '{}'::jsonb",
        "TRUNCATE audit_rowchange",
        # A writer cannot forge who wrote a capture, in which transaction, or pre-link it.
        "INSERT INTO audit_rowchange (table_name, operation, row_id, db_user, occurred_at)"
        " VALUES ('tenancy_membership', 'UPDATE', '1', 'someone', now())",
        "INSERT INTO audit_rowchange (table_name, operation, row_id, transaction_id)"
        " VALUES ('tenancy_membership', 'UPDATE', '1', 1)",
        "INSERT INTO audit_rowchange (table_name, operation, row_id, event_id)"
        " VALUES ('tenancy_membership', 'UPDATE', '1', 1)",
        # Nor claim a ledger event for another transaction.
        "UPDATE audit_auditevent SET transaction_id = 1",
    ],
)
def test_the_application_role_cannot_remove_or_rewrite_captures(drained, statement):
    """GIVEN a captured raw write WHEN the application role tries to delete, rewrite, truncate
    or forge captures THEN PostgreSQL refuses, and the capture is still there."""
    membership = drained.memberships["viewer"]
    with as_application_role() as cursor:
        cursor.execute(
            "UPDATE tenancy_membership SET role_id = 'workspace_owner' WHERE id = %s", [membership.pk]
        )
        cursor.execute("SAVEPOINT attempt")
        with pytest.raises(ProgrammingError, match="permission denied"):
            cursor.execute(statement)
        cursor.execute("ROLLBACK TO SAVEPOINT attempt")
        cursor.execute(
            "SELECT count(*) FROM audit_rowchange WHERE table_name = 'tenancy_membership' AND row_id = %s"
            " AND operation = 'UPDATE'",
            [str(membership.pk)],
        )
        assert cursor.fetchone()[0] == 1


def test_the_settle_function_refuses_a_link_to_an_event_that_does_not_name_the_row(drained):
    """GIVEN a raw write and an unrelated service event of the same transaction WHEN the
    application role calls audit_rowchange_settle to link the capture to that event THEN nothing
    is linked, and the sealer still records the write as db.row_changed."""
    membership = drained.memberships["viewer"]
    with as_application_role() as cursor:
        cursor.execute(
            "UPDATE tenancy_membership SET role_id = 'workspace_owner' WHERE id = %s", [membership.pk]
        )
        with transaction.atomic():
            unrelated = audit_event_record(action="workspace.updated", actor=None, target=drained.ws)
        capture = RowChange.objects.get(
            table_name="tenancy_membership", row_id=str(membership.pk), operation="UPDATE"
        )
        cursor.execute(
            "SELECT audit_rowchange_settle(%s::bigint[], %s::bigint[])", [[capture.pk], [unrelated.pk]]
        )
        assert cursor.fetchall() == []
        ledger_seal_all()
    capture.refresh_from_db()
    event = _row_events("tenancy_membership").get()
    assert capture.event_id == event.pk
    assert event.data["after"]["role_id"] == "workspace_owner"


def test_a_raw_write_beside_a_service_call_in_one_transaction_is_not_hidden_by_it(drained):
    """GIVEN one transaction that calls a service (adding a membership) and also raw-updates
    another membership WHEN the sealer runs THEN the service's write is linked to its event and
    the raw write, which no event of the transaction names, becomes db.row_changed."""
    world = drained
    viewer = world.memberships["viewer"]
    with transaction.atomic():
        added = services.membership_create(
            actor=world.users["workspace_owner"],
            user=world.newcomers[world.org.pk],
            role="viewer",
            workspace=world.ws,
        )
        Membership.objects.filter(pk=viewer.pk).update(role_id="workspace_owner")
    ledger_seal_all()
    created = AuditEvent.objects.get(action="membership.created", target_id=str(added.pk))
    assert [event.target_id for event in _row_events("tenancy_membership")] == [str(viewer.pk)]
    assert RowChange.objects.get(table_name="tenancy_membership", row_id=str(added.pk)).event_id == created.pk


def test_a_forged_covering_event_leaves_its_trace_in_the_ledger(drained):
    """GIVEN a writer who raw-updates a membership and writes a ledger event naming it, to pass
    the write off as a service's WHEN the sealer runs THEN the capture is linked to that event,
    which the ledger keeps for good: the row, the transaction and the writer are on record."""
    membership = drained.memberships["viewer"]
    with as_application_role() as cursor:
        cursor.execute(
            "UPDATE tenancy_membership SET role_id = 'workspace_owner' WHERE id = %s", [membership.pk]
        )
        with transaction.atomic():
            forged = audit_event_record(action="membership.role_changed", actor=None, target=membership)
        ledger_seal_all()
    forged.refresh_from_db()
    assert forged.sequence is not None
    assert (forged.target_type, forged.target_id) == ("tenancy.membership", str(membership.pk))
    capture = RowChange.objects.get(
        table_name="tenancy_membership", row_id=str(membership.pk), operation="UPDATE"
    )
    assert capture.event_id == forged.pk
    assert capture.db_user == APP_ROLE
    assert capture.new["role_id"] == "workspace_owner"


def test_covers_links_the_other_rows_a_service_wrote(drained):
    """GIVEN an event that names a second row it wrote through ``covers``, of a table its action
    may cover WHEN the sealer runs THEN that row's capture is linked to the event, not recorded as
    db.row_changed."""
    workflow = drained.workflows["own"]
    change = drained.changes["own"]
    with transaction.atomic():
        Workflow.objects.filter(pk=workflow.pk).update(name="Renamed by the change")
        event = audit_event_record(
            action="workflow.change.applied", actor=None, target=change, covers=[workflow]
        )
    ledger_seal_all()
    assert event.data["covers"] == [f"workflows_workflow:{workflow.pk}"]
    assert not _row_events("workflows_workflow").exists()
    capture = RowChange.objects.get(
        table_name="workflows_workflow", row_id=str(workflow.pk), operation="UPDATE"
    )
    assert capture.event_id == event.pk


def test_every_captured_table_maps_to_its_model_as_the_settle_function_assumes(db):
    """GIVEN every table carrying a capture trigger THEN ``app_model`` → ``app.model`` names its
    Django model, the rule by which service events' targets are matched to captures."""
    from django.apps import apps

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname LIKE '%%\\_capture\\_insert' AND NOT t.tgisinternal"
        )
        tables = sorted(row[0] for row in cursor.fetchall())
    assert "tenancy_membership" in tables
    models_by_table = {model._meta.db_table: model for model in apps.get_models(include_auto_created=True)}
    # A table whose name does not follow ``app_model`` (a library's, such as ``otp_totp_totpdevice``)
    # is matched only as a part of the row it belongs to, and said so in CAPTURE_PARTS.
    parts_only = {table for table, _, _ in CAPTURE_PARTS}
    for table in tables:
        if models_by_table[table]._meta.label_lower != table_target_type(table):
            assert table in parts_only, table


def test_covers_by_value_links_every_row_written_with_that_value(drained):
    """GIVEN an event that covers the workflows written with workspace = ws WHEN one statement
    changes them and another changes a workflow elsewhere THEN only the latter becomes
    db.row_changed."""
    world = drained
    with transaction.atomic():
        Workflow.objects.filter(workspace=world.ws).update(description="bulk")
        Workflow.objects.filter(pk=world.workflows["sibling"].pk).update(description="elsewhere")
        audit_event_record(
            action="workflow.change.applied",
            actor=None,
            target=world.changes["own"],
            covers=[rows_where(Workflow, "workspace", world.ws.pk)],
        )
    ledger_seal_all()
    assert [event.target_id for event in _row_events("workflows_workflow")] == [
        str(world.workflows["sibling"].pk)
    ]


def test_an_object_grant_through_the_service_records_no_row_change(drained):
    """GIVEN the grant service WHEN it gives a user a grant on a workspace (a row of a table that
    belongs to the workspace) THEN the ledger holds the service's event and no db.row_changed."""
    from governance.access.services import object_grant_assign

    world = drained
    object_grant_assign(
        actor=world.users["workspace_owner"], user=world.newcomers[world.org.pk], obj=world.ws, verb="view"
    )
    ledger_seal_all()
    assert AuditEvent.objects.filter(action="grant.assigned", target_id=str(world.ws.pk)).exists()
    assert not AuditEvent.objects.filter(action="db.row_changed", sequence__gt=_mark["sequence"]).exists()
    assert not RowChange.objects.filter(event__isnull=True).exists()


# --- A db.row_changed event says what its capture says --------------------------------------------


def _capture_of(membership) -> RowChange:
    return RowChange.objects.get(
        table_name="tenancy_membership", row_id=str(membership.pk), operation="UPDATE"
    )


def _softened_event(row: RowChange, **changes):
    """The event the sealer would write for the capture ``row``, with ``changes`` made to its data."""
    from audit.canonical import canonical_bytes
    from audit.sealing import _row_change_event

    event = _row_change_event(row)
    event.data = {**event.data, **changes}
    values = {name: getattr(event, name) for name in ("uid", "occurred_at", "category", "action", "outcome",
              "actor_type", "actor_id", "actor_label", "organization_id", "workspace_id", "target_type",
              "target_id", "target_label", "request_id", "ip", "user_agent", "data")}  # fmt: skip
    event.canonical = canonical_bytes(values)
    return event


def test_a_softened_db_row_changed_event_is_refused_and_the_truth_is_sealed(drained):
    """GIVEN a raw viewer→owner escalation WHEN the application role writes its own db.row_changed
    event for the capture saying viewer→viewer (canonical bytes and columns consistent) and tries
    to link it THEN the database refuses the event, and the sealer records the real change."""
    membership = drained.memberships["viewer"]
    with as_application_role() as cursor:
        cursor.execute(
            "UPDATE tenancy_membership SET role_id = 'workspace_owner' WHERE id = %s", [membership.pk]
        )
        capture = _capture_of(membership)
        forged = _softened_event(capture, after={**capture.new, "role_id": "viewer"})
        cursor.execute("SAVEPOINT attempt")
        with pytest.raises(ProgrammingError, match="exactly what capture"), transaction.atomic():
            forged.save(force_insert=True)
        cursor.execute("ROLLBACK TO SAVEPOINT attempt")
        ledger_seal_all()
    event = _row_events("tenancy_membership").get()
    assert event.data["after"]["role_id"] == "workspace_owner"
    assert _capture_of(membership).event_id == event.pk
    assert ledger_verify().ok


@pytest.mark.parametrize(
    "change",
    [
        {"before": None},
        {"operation": "INSERT"},
        {"db_user": "someone_else"},
        {"transaction_id": 1},
    ],
)
def test_every_field_of_a_db_row_changed_event_must_match_its_capture(drained, change):
    membership = drained.memberships["viewer"]
    Membership.objects.filter(pk=membership.pk).update(role_id="auditor")
    forged = _softened_event(_capture_of(membership), **change)
    with pytest.raises(ProgrammingError, match="exactly what capture"), transaction.atomic():
        forged.save(force_insert=True)


def test_a_db_row_changed_event_is_written_once_per_capture(drained):
    """GIVEN a capture already recorded WHEN a second, identical db.row_changed event is written
    for it THEN the database refuses it (no duplicates to bury the first under)."""
    membership = drained.memberships["viewer"]
    Membership.objects.filter(pk=membership.pk).update(role_id="auditor")
    ledger_seal_all()
    capture = _capture_of(membership)
    with pytest.raises(ProgrammingError, match="already recorded"), transaction.atomic():
        _softened_event(capture).save(force_insert=True)
    with pytest.raises(ProgrammingError, match="must name its capture"), transaction.atomic():
        _softened_event(capture, capture="1; DROP TABLE x").save(force_insert=True)


def test_covers_cannot_vouch_for_a_table_outside_the_actions_own(drained):
    """GIVEN a raw escalation WHEN the writer records an event of an action that covers other
    rows (data keys) and lists the membership in ``covers`` (by key or by value), bypassing the
    service's check THEN the settle function does not link it: it is sealed as db.row_changed."""
    membership = drained.memberships["viewer"]
    with pytest.raises(AuditError, match="may not cover rows of 'tenancy_membership'"), transaction.atomic():
        audit_event_record(action="data_key.destroyed", actor=None, covers=[membership])
    with as_application_role() as cursor:
        cursor.execute(
            "UPDATE tenancy_membership SET role_id = 'workspace_owner' WHERE id = %s", [membership.pk]
        )
        with transaction.atomic(), mock.patch("audit.services.may_cover", return_value=True):
            audit_event_record(
                action="data_key.destroyed",
                actor=None,
                covers=[membership, rows_where(Membership, "role", "workspace_owner")],
            )
        ledger_seal_all()
    event = _row_events("tenancy_membership").get()
    assert event.data["after"]["role_id"] == "workspace_owner"
    assert _capture_of(membership).event_id == event.pk


# --- The tables the backstop covers ---------------------------------------------------------------

BACKSTOPPED = (
    "access_policy",
    "access_policy_disabled_workspaces",
    "access_policychange",
    "access_oncalloverride",
    "knox_authtoken",
    "otp_totp_totpdevice",
    "otp_static_staticdevice",
    "otp_static_statictoken",
    "accounts_backupcodedevice",
    "accounts_backupcode",
    "django_otp_webauthn_webauthncredential",
    "account_emailaddress",
    "socialaccount_socialaccount",
    "accounts_conditionalaccesspolicy",
    "accounts_user_user_permissions",
)


@pytest.mark.parametrize("table", BACKSTOPPED)
def test_policies_overrides_tokens_and_second_factors_are_backstopped(db, table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relname = %s AND t.tgname LIKE '%%\\_capture\\_%%'",
            [table],
        )
        assert cursor.fetchone()[0] == 3


def test_a_hand_made_on_call_override_is_sealed_as_db_row_changed(drained):
    """GIVEN the application role WHEN it inserts an on-call override by hand (which would let
    approved changes apply out of hours) THEN the ledger records the row."""
    user = drained.users["workflow_operator"]
    with as_application_role() as cursor:
        cursor.execute(
            "INSERT INTO access_oncalloverride (reason, starts_at, ends_at, user_id, workspace_id)"
            " VALUES ('x', now(), now() + interval '8 hours', %s, %s) RETURNING id",
            [user.pk, drained.ws.pk],
        )
        (override_id,) = cursor.fetchone()
        ledger_seal_all()
    event = _row_events("access_oncalloverride").get()
    assert event.target_id == str(override_id)
    assert event.data["operation"] == "INSERT"


def test_a_second_factor_secret_is_captured_as_changed_never_by_value(drained):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = drained.users["viewer"]
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    TOTPDevice.objects.filter(pk=device.pk).update(key="00" * 20)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=99, throttling_failure_count=3)  # a sign-in's noise
    ledger_seal_all()
    events = list(_row_events("otp_totp_totpdevice"))
    assert [event.data["operation"] for event in events] == ["INSERT", "UPDATE"]
    assert events[0].data["after"]["key"] == "[hidden]"
    assert events[1].data["after"]["key"] == "[hidden: changed]"
    for event in events:
        assert device.key.encode() not in bytes(event.canonical)
        assert b"00000000000000000000" not in bytes(event.canonical)
