"""Database triggers of the ledger, as SQL. Used by migrations; kept here so tests can read them.

Immutability (PostgreSQL and SQLite): ledger events refuse DELETE, and UPDATE except the one-time
sealing step (sequence, hashes and seal time set once, nothing else changed); signed tree heads
refuse both. TRUNCATE is refused by privileges, not a trigger (see ``privileges_sql``).

Migrations install this SQL; changing it means adding a migration that installs the new version.
SQLite rebuilds a table to alter a column, which drops its triggers: a migration that alters an
audit table must reinstall them (as 0004 does); the quick-start test catches a forgotten one.

Completeness backstop (PostgreSQL): statement-level triggers with transition tables copy every
row that any statement inserted, changed or deleted in a governed table into ``audit_rowchange``
— services included; no session setting switches this off. The database, not the writer, fills
the capture's user, transaction id and time (column defaults the application role may not
override). The sealer reconciles each capture with the ledger events of the same transaction
(``audit_auditevent.transaction_id``, also a database default): a capture whose row a service
event of that transaction names is linked to that event; any other becomes a ``db.row_changed``
event. Linking goes through ``audit_rowchange_settle``, a SECURITY DEFINER function that checks
the link; the application role may only insert captures, never update or delete them.
"""

from __future__ import annotations

from django.db import migrations

from audit.canonical import CONTENT_COLUMNS

# Columns an UPDATE of a ledger event must leave unchanged (all but the sealing ones).
EVENT_CONTENT_COLUMNS = ("id", *CONTENT_COLUMNS, "canonical")

# Governed tables: (table, primary-key column, columns never copied into the ledger).
GOVERNED_TABLES = (
    # Password hashes never leave their table; a login's last_login update is not a change of note.
    ("accounts_user", "id", ("password", "last_login")),
    ("tenancy_organization", "id", ()),
    ("tenancy_workspace", "id", ()),
    ("tenancy_membership", "id", ()),
    ("tenancy_role", "code", ()),
    ("tenancy_rolepermission", "id", ()),
    ("tenancy_workspaceusergrant", "id", ()),
)


def unchanged(columns, old="OLD", new="NEW") -> str:
    """SQL: every one of ``columns`` is the same in NEW as in OLD."""
    return " AND ".join(f"{new}.{column} IS NOT DISTINCT FROM {old}.{column}" for column in columns)


POSTGRES_IMMUTABILITY = f"""
CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.sequence IS NULL AND NEW.sequence IS NOT NULL
       AND OLD.leaf_hash IS NULL AND OLD.chain_hash IS NULL AND OLD.sealed_at IS NULL
       AND {unchanged(EVENT_CONTENT_COLUMNS)} THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit ledger is append-only: % of event % refused', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_event_immutable BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_guard();

CREATE OR REPLACE FUNCTION audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'signed tree heads are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_head_immutable BEFORE UPDATE OR DELETE ON audit_signedtreehead
    FOR EACH ROW EXECUTE FUNCTION audit_head_guard();
"""

POSTGRES_IMMUTABILITY_REVERSE = """
DROP TRIGGER IF EXISTS audit_event_immutable ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_head_immutable ON audit_signedtreehead;
DROP FUNCTION IF EXISTS audit_event_guard();
DROP FUNCTION IF EXISTS audit_head_guard();
"""

SQLITE_IMMUTABILITY = [
    "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only: DELETE refused'); END",
    "CREATE TRIGGER audit_event_seal_only BEFORE UPDATE ON audit_auditevent WHEN NOT ("
    "OLD.sequence IS NULL AND NEW.sequence IS NOT NULL AND OLD.leaf_hash IS NULL AND OLD.chain_hash IS NULL "
    f"AND OLD.sealed_at IS NULL AND {unchanged(EVENT_CONTENT_COLUMNS).replace('IS NOT DISTINCT FROM', 'IS')}) "
    "BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only: UPDATE refused'); END",
    "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_signedtreehead "
    "BEGIN SELECT RAISE(ABORT, 'signed tree heads are append-only: DELETE refused'); END",
    "CREATE TRIGGER audit_head_no_update BEFORE UPDATE ON audit_signedtreehead "
    "BEGIN SELECT RAISE(ABORT, 'signed tree heads are append-only: UPDATE refused'); END",
]
SQLITE_IMMUTABILITY_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
    "DROP TRIGGER IF EXISTS audit_event_seal_only",
    "DROP TRIGGER IF EXISTS audit_head_no_delete",
    "DROP TRIGGER IF EXISTS audit_head_no_update",
]

# The capture trigger. It names only the row's content: ``db_user``, ``transaction_id`` and
# ``occurred_at`` are column defaults (current_user, txid_current(), clock_timestamp()) that the
# application role has no privilege to supply itself (see ``privileges_sql``).
#
# The trigger's arguments after the primary key name columns kept out of the capture, of two
# kinds: a plain name is *ignored* (never copied, and a change to it alone is not captured: a
# sign-in's ``last_login``, a device's throttling counters); ``!name`` is *secret*: its value is
# never copied, but a change to it is captured, the value standing as ``"[hidden]"`` (or
# ``"[hidden: changed]"`` on both sides of an UPDATE that changed it; a NULL stays NULL).
POSTGRES_CAPTURE_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_capture_mask(doc jsonb, secret text[], other jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $f$
    SELECT doc || coalesce((
        SELECT jsonb_object_agg(s, CASE
            WHEN doc -> s = 'null'::jsonb THEN 'null'::jsonb
            WHEN other IS NOT NULL AND (other -> s) IS DISTINCT FROM (doc -> s) THEN '"[hidden: changed]"'::jsonb
            ELSE '"[hidden]"'::jsonb END)
        FROM unnest(secret) AS s WHERE doc ? s), '{}'::jsonb)
$f$;

CREATE OR REPLACE FUNCTION audit_capture_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pk text := TG_ARGV[0];
    ignored text[] := ARRAY(SELECT a FROM unnest(TG_ARGV[1:]) AS a WHERE a NOT LIKE '!%');
    secret text[] := ARRAY(SELECT substr(a, 2) FROM unnest(TG_ARGV[1:]) AS a WHERE a LIKE '!%');
    masked boolean := cardinality(secret) > 0;  -- most tables have no secret: no call per row
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit_rowchange (table_name, operation, row_id, old, new, application, actor_hint)
        SELECT TG_TABLE_NAME, TG_OP, n.key, NULL,
               CASE WHEN masked THEN audit_capture_mask(n.doc, secret, NULL) ELSE n.doc END,
               current_setting('application_name'), coalesce(current_setting('portal.actor', true), '')
        FROM (SELECT to_jsonb(r) ->> pk AS key, to_jsonb(r) - ignored AS doc FROM new_rows AS r) AS n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO audit_rowchange (table_name, operation, row_id, old, new, application, actor_hint)
        SELECT TG_TABLE_NAME, TG_OP, n.key,
               CASE WHEN masked THEN audit_capture_mask(o.doc, secret, n.doc) ELSE o.doc END,
               CASE WHEN masked THEN audit_capture_mask(n.doc, secret, o.doc) ELSE n.doc END,
               current_setting('application_name'), coalesce(current_setting('portal.actor', true), '')
        FROM (SELECT to_jsonb(r) ->> pk AS key, to_jsonb(r) - ignored AS doc FROM new_rows AS r) AS n
        JOIN (SELECT to_jsonb(r) ->> pk AS key, to_jsonb(r) - ignored AS doc FROM old_rows AS r) AS o USING (key)
        WHERE n.doc IS DISTINCT FROM o.doc;
    ELSE
        INSERT INTO audit_rowchange (table_name, operation, row_id, old, new, application, actor_hint)
        SELECT TG_TABLE_NAME, TG_OP, o.key,
               CASE WHEN masked THEN audit_capture_mask(o.doc, secret, NULL) ELSE o.doc END,
               NULL, current_setting('application_name'), coalesce(current_setting('portal.actor', true), '')
        FROM (SELECT to_jsonb(r) ->> pk AS key, to_jsonb(r) - ignored AS doc FROM old_rows AS r) AS o;
    END IF;
    RETURN NULL;
END $$;
"""

# The second version (migration 0008): every column named after the key was ignored.
POSTGRES_CAPTURE_FUNCTION_V2 = """
CREATE OR REPLACE FUNCTION audit_capture_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pk text := TG_ARGV[0];
    hidden text[] := TG_ARGV[1:];
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit_rowchange (table_name, operation, row_id, old, new, application, actor_hint)
        SELECT TG_TABLE_NAME, TG_OP, to_jsonb(n) ->> pk, NULL, to_jsonb(n) - hidden,
               current_setting('application_name'), coalesce(current_setting('portal.actor', true), '')
        FROM new_rows AS n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO audit_rowchange (table_name, operation, row_id, old, new, application, actor_hint)
        SELECT TG_TABLE_NAME, TG_OP, n.key, o.doc - hidden, n.doc - hidden,
               current_setting('application_name'), coalesce(current_setting('portal.actor', true), '')
        FROM (SELECT to_jsonb(r) ->> pk AS key, to_jsonb(r) AS doc FROM new_rows AS r) AS n
        JOIN (SELECT to_jsonb(r) ->> pk AS key, to_jsonb(r) AS doc FROM old_rows AS r) AS o USING (key)
        WHERE n.doc - hidden IS DISTINCT FROM o.doc - hidden;
    ELSE
        INSERT INTO audit_rowchange (table_name, operation, row_id, old, new, application, actor_hint)
        SELECT TG_TABLE_NAME, TG_OP, to_jsonb(o) ->> pk, to_jsonb(o) - hidden, NULL,
               current_setting('application_name'), coalesce(current_setting('portal.actor', true), '')
        FROM old_rows AS o;
    END IF;
    RETURN NULL;
END $$;
"""

# The first version (migration 0002): it skipped transactions that set ``portal.audited``, which
# any writer could set. Kept so that migration 0008 can be reversed.
POSTGRES_CAPTURE_FUNCTION_SKIPPABLE = """
CREATE OR REPLACE FUNCTION audit_capture_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pk text := TG_ARGV[0];
    hidden text[] := TG_ARGV[1:];
BEGIN
    IF current_setting('portal.audited', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit_rowchange (table_name, operation, row_id, old, new, db_user, application,
                                     actor_hint, transaction_id, occurred_at)
        SELECT TG_TABLE_NAME, TG_OP, to_jsonb(n) ->> pk, NULL, to_jsonb(n) - hidden, current_user,
               current_setting('application_name'), coalesce(current_setting('portal.actor', true), ''),
               txid_current(), clock_timestamp()
        FROM new_rows AS n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO audit_rowchange (table_name, operation, row_id, old, new, db_user, application,
                                     actor_hint, transaction_id, occurred_at)
        SELECT TG_TABLE_NAME, TG_OP, n.key, o.doc - hidden, n.doc - hidden, current_user,
               current_setting('application_name'), coalesce(current_setting('portal.actor', true), ''),
               txid_current(), clock_timestamp()
        FROM (SELECT to_jsonb(r) ->> pk AS key, to_jsonb(r) AS doc FROM new_rows AS r) AS n
        JOIN (SELECT to_jsonb(r) ->> pk AS key, to_jsonb(r) AS doc FROM old_rows AS r) AS o USING (key)
        WHERE n.doc - hidden IS DISTINCT FROM o.doc - hidden;
    ELSE
        INSERT INTO audit_rowchange (table_name, operation, row_id, old, new, db_user, application,
                                     actor_hint, transaction_id, occurred_at)
        SELECT TG_TABLE_NAME, TG_OP, to_jsonb(o) ->> pk, to_jsonb(o) - hidden, NULL, current_user,
               current_setting('application_name'), coalesce(current_setting('portal.actor', true), ''),
               txid_current(), clock_timestamp()
        FROM old_rows AS o;
    END IF;
    RETURN NULL;
END $$;
"""

# Rows that belong to another row and are written with it: (table, foreign-key column, target
# type of the row it belongs to). A service event naming that row covers them too (a group's
# member rows, a change request's approvals, a service account's tokens, a person's second
# factors), provided the row belonged to it before and after the write. Adding a part means a
# migration that reinstalls ``POSTGRES_SETTLE_FUNCTION``.
CAPTURE_PARTS_V1 = (
    ("accounts_scimgroup_members", "scimgroup_id", "accounts.scimgroup"),
    ("accounts_scimgroup_members", "user_id", "accounts.user"),
    ("accounts_ssomembership", "membership_id", "tenancy.membership"),
    ("workflows_approval", "change_id", "workflows.changerequest"),
    ("workflows_changerequest", "version_id", "workflows.workflowversion"),
    ("workflows_serviceaccounttoken", "service_account_id", "workflows.serviceaccount"),
    ("tenancy_workspaceusergrant", "content_object_id", "tenancy.workspace"),
    ("workflows_workflowusergrant", "content_object_id", "workflows.workflow"),
)
CAPTURE_PARTS = (
    *CAPTURE_PARTS_V1,
    # A person's API tokens, second factors, addresses and identity-provider links.
    ("knox_authtoken", "user_id", "accounts.user"),
    ("otp_totp_totpdevice", "user_id", "accounts.user"),
    ("otp_static_staticdevice", "user_id", "accounts.user"),
    ("otp_static_statictoken", "device_id", "otp_static.staticdevice"),
    ("accounts_backupcodedevice", "user_id", "accounts.user"),
    ("django_otp_webauthn_webauthncredential", "user_id", "accounts.user"),
    ("account_emailaddress", "user_id", "accounts.user"),
    ("socialaccount_socialaccount", "user_id", "accounts.user"),
    ("accounts_user_groups", "user_id", "accounts.user"),
    ("accounts_user_user_permissions", "user_id", "accounts.user"),
    # A policy's per-workspace switches, and those a proposed change carries.
    ("access_policy_disabled_workspaces", "policy_id", "access.policy"),
    ("access_policychange_disabled_workspaces", "policychange_id", "access.policychange"),
)


def _parts_values(parts) -> str:
    return ", ".join(f"('{table}', '{column}', '{parent}')" for table, column, parent in parts)


# The tables whose rows an action may name in ``data.covers`` (besides its target): only the
# rows its own service writes. An event cannot vouch for a row of any other table, so a writer
# who adds an event of their own cannot pass off a raw write elsewhere as covered by it
# (``audit_event_record`` refuses such an entry; the settle function ignores one written
# directly). Adding an action here means a migration that reinstalls
# ``POSTGRES_SETTLE_FUNCTION``.
COVERING_ACTIONS = (
    ("key.rotated", "crypto_keyencryptionkey"),
    ("key.rotated", "crypto_datakey"),
    ("key.byok_configured", "crypto_keyencryptionkey"),
    ("key.byok_configured", "crypto_datakey"),
    ("data_key.rotation_started", "crypto_datakey"),
    ("data_key.rotation_completed", "crypto_datakey"),
    ("data_key.destroyed", "crypto_datakey"),
    ("workflow.change.applied", "workflows_workflow"),
    ("mfa.backup_codes_generated", "accounts_backupcode"),
    ("mfa.backup_code_used", "accounts_backupcode"),
    ("mfa.device_removed", "accounts_backupcode"),
    ("mfa.device_removed", "otp_static_statictoken"),
    ("mfa.reset", "accounts_backupcode"),
    ("mfa.reset", "otp_static_statictoken"),
    ("policy.change_approved", "access_policychange"),
)


def may_cover(action: str, table: str) -> bool:
    """Whether an event of ``action`` may name rows of ``table`` in ``data.covers``."""
    return (action, table) in COVERING_ACTIONS


# Which ledger event a capture may be linked to, checked by the database when the sealer links
# it. A service event (any action but db.row_changed) of the capture's own transaction covers
# the capture when it names the row: its target is the row (table ``app_model`` is target type
# ``app.model``, and the primary key), or the row it belongs to (``CAPTURE_PARTS``), or its
# ``data.covers`` lists ``"table:pk"`` or ``"table:column=value"`` (every row of the table that
# the transaction wrote with that value, e.g. the data keys rewrapped under a new key) for a
# table its action may cover (``COVERING_ACTIONS``). A db.row_changed event covers the capture
# whose id it states (the database only accepts a db.row_changed event that is its capture's
# own, see ``POSTGRES_ROW_CHANGED_GUARD``). The function runs as its owner (the migration role):
# it is the only way to change a capture, and it can only link an unlinked one, never unlink,
# rewrite or delete. It returns the ids of the captures it linked.
def _settle_function_sql(parts, covering=None, *, compare_content: bool) -> str:
    """The settle function for a set of ``CAPTURE_PARTS``; ``covering`` limits ``data.covers`` to
    those (action, table) pairs (None: any table, as the first version had it); with
    ``compare_content`` a db.row_changed event must also state the capture's before and after."""
    covering_rule = (
        f"""AND EXISTS (SELECT 1 FROM (VALUES {", ".join(f"('{a}', '{t}')" for a, t in covering)})
                            AS a(action, table_name) WHERE a.action = e.action AND a.table_name = c.table_name)"""  # noqa: S608 (constants of this module)
        if covering is not None
        else ""
    )
    content_rule = (
        """AND e.data -> 'before' IS NOT DISTINCT FROM coalesce(c.old, 'null'::jsonb)
            AND e.data -> 'after' IS NOT DISTINCT FROM coalesce(c.new, 'null'::jsonb)"""
        if compare_content
        else ""
    )
    return f"""
CREATE OR REPLACE FUNCTION audit_rowchange_settle(captures bigint[], events bigint[]) RETURNS SETOF bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    UPDATE audit_rowchange AS c SET event_id = v.event_id
    FROM unnest(captures, events) AS v(capture_id, event_id)
    JOIN audit_auditevent AS e ON e.id = v.event_id
    WHERE c.id = v.capture_id AND c.event_id IS NULL AND (
        (e.action <> 'db.row_changed' AND e.transaction_id = c.transaction_id AND (
            (e.target_type = regexp_replace(c.table_name, '_', '.') AND e.target_id = c.row_id)
            OR (jsonb_typeof(e.data -> 'covers') = 'array' {covering_rule} AND (
                e.data -> 'covers' ? (c.table_name || ':' || c.row_id)
                OR EXISTS (
                    SELECT 1 FROM jsonb_array_elements_text(e.data -> 'covers') AS k(entry)
                    WHERE k.entry LIKE c.table_name || ':%=%'
                      AND coalesce(c.new, c.old) ->> split_part(split_part(k.entry, ':', 2), '=', 1)
                          = split_part(k.entry, '=', 2))))
            OR EXISTS (
                SELECT 1 FROM (VALUES {_parts_values(parts)}) AS p(table_name, column_name, parent_type)
                WHERE p.table_name = c.table_name AND p.parent_type = e.target_type
                  AND coalesce(c.new, c.old) ->> p.column_name = e.target_id
                  AND coalesce(c.old, c.new) ->> p.column_name = e.target_id)))
        OR (e.action = 'db.row_changed' AND e.data ->> 'capture' = c.id::text
            AND e.target_type = c.table_name AND e.target_id = c.row_id
            AND e.data ->> 'operation' = c.operation
            AND e.data ->> 'transaction_id' IS NOT DISTINCT FROM c.transaction_id::text
            {content_rule})
    )
    RETURNING c.id;
$$;
REVOKE ALL ON FUNCTION audit_rowchange_settle(bigint[], bigint[]) FROM PUBLIC;
"""  # noqa: S608 (constants of this module, no input)


POSTGRES_SETTLE_FUNCTION = _settle_function_sql(CAPTURE_PARTS, COVERING_ACTIONS, compare_content=True)
# The first version (migration 0008): any event could cover any table through ``data.covers``.
POSTGRES_SETTLE_FUNCTION_V1 = _settle_function_sql(CAPTURE_PARTS_V1, compare_content=False)


# A db.row_changed event says what its capture says, nothing else: the database refuses one whose
# content (the canonical document and the columns) is not exactly what the sealer derives from
# the capture it names (``audit.sealing._row_change_event``), or whose capture is already linked
# or already has its db.row_changed event. A writer with the application role can therefore not
# put a softened account of a raw write into the ledger (viewer→viewer for viewer→owner) and
# link the capture to it.
POSTGRES_ROW_CHANGED_GUARD = """
CREATE OR REPLACE FUNCTION audit_row_changed_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c audit_rowchange%ROWTYPE;
    expected jsonb;
    written jsonb;
BEGIN
    IF NOT (NEW.data ->> 'capture') ~ '^[0-9]{1,18}$' THEN
        RAISE EXCEPTION 'a db.row_changed event must name its capture' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO c FROM audit_rowchange WHERE id = (NEW.data ->> 'capture')::bigint;
    IF NOT FOUND OR c.event_id IS NOT NULL OR EXISTS (
        SELECT 1 FROM audit_auditevent AS e
        WHERE e.action = 'db.row_changed' AND e.data ->> 'capture' = NEW.data ->> 'capture'
    ) THEN
        RAISE EXCEPTION 'capture % is unknown or already recorded', NEW.data ->> 'capture'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    expected := jsonb_build_object(
        'v', 1,
        'uid', NEW.uid::text,
        'occurred_at', to_char(c.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'category', 'system', 'action', 'db.row_changed', 'outcome', 'success',
        'actor', jsonb_build_object('type', 'system', 'id', NULL,
                                    'label', left(coalesce(nullif(c.actor_hint, ''), 'db:' || c.db_user), 254)),
        'organization_id', NULL, 'workspace_id', NULL,
        'target', jsonb_build_object('type', c.table_name, 'id', c.row_id,
                                     'label', left(c.operation || ' ' || c.table_name || ' ' || c.row_id, 254)),
        'request', jsonb_build_object('id', '', 'ip', NULL, 'user_agent', left(coalesce(c.application, ''), 300)),
        'data', jsonb_build_object('operation', c.operation, 'before', c.old, 'after', c.new,
                                   'transaction_id', c.transaction_id, 'db_user', c.db_user, 'capture', c.id));
    written := jsonb_build_object(
        'v', 1, 'uid', NEW.uid::text,
        'occurred_at', to_char(NEW.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'category', NEW.category, 'action', NEW.action, 'outcome', NEW.outcome,
        'actor', jsonb_build_object('type', NEW.actor_type, 'id', NEW.actor_id, 'label', NEW.actor_label),
        'organization_id', NEW.organization_id, 'workspace_id', NEW.workspace_id,
        'target', jsonb_build_object('type', NEW.target_type, 'id', NEW.target_id, 'label', NEW.target_label),
        'request', jsonb_build_object('id', NEW.request_id, 'ip', host(NEW.ip), 'user_agent', NEW.user_agent),
        'data', NEW.data);
    IF written IS DISTINCT FROM expected OR convert_from(NEW.canonical, 'UTF8')::jsonb IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'a db.row_changed event must say exactly what capture % says', c.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE INDEX IF NOT EXISTS audit_event_row_changed_capture ON audit_auditevent ((data ->> 'capture'))
    WHERE action = 'db.row_changed';
CREATE TRIGGER audit_event_row_changed BEFORE INSERT ON audit_auditevent
    FOR EACH ROW WHEN (NEW.action = 'db.row_changed') EXECUTE FUNCTION audit_row_changed_guard();
"""

POSTGRES_ROW_CHANGED_GUARD_REVERSE = """
DROP TRIGGER IF EXISTS audit_event_row_changed ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_row_changed_guard();
DROP INDEX IF EXISTS audit_event_row_changed_capture;
"""


def table_target_type(table: str) -> str:
    """The event target type of a row of ``table``: Django's ``app_model`` table is ``app.model``
    (the same rule as ``regexp_replace(table, '_', '.')`` in the settle function)."""
    return table.replace("_", ".", 1)


def capture_triggers_sql(table: str, pk: str, hidden: tuple[str, ...]) -> str:
    args = ", ".join(f"'{value}'" for value in (pk, *hidden))
    return f"""
CREATE TRIGGER {table}_capture_insert AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_capture_rows({args});
CREATE TRIGGER {table}_capture_update AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_capture_rows({args});
CREATE TRIGGER {table}_capture_delete AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_capture_rows({args});
"""


def drop_capture_triggers_sql(table: str) -> str:
    return "".join(
        f"DROP TRIGGER IF EXISTS {table}_capture_{op} ON {table};\n" for op in ("insert", "update", "delete")
    )


LEDGER_TABLES = ("audit_auditevent", "audit_signedtreehead")

# Columns of an event the application role may insert: all but ``id`` and ``transaction_id``
# (the database fills both; a writer cannot claim another transaction's events as its own).
EVENT_INSERT_COLUMNS = (
    *CONTENT_COLUMNS,
    "canonical",
    "search",
    "sequence",
    "leaf_hash",
    "chain_hash",
    "sealed_at",
)
# Columns of a capture the application role may insert (what the trigger names): the database
# fills ``db_user``, ``transaction_id`` and ``occurred_at``, and only the settle function sets
# ``event_id``.
CAPTURE_INSERT_COLUMNS = ("table_name", "operation", "row_id", "old", "new", "application", "actor_hint")


def privileges_sql(app_role: str) -> str:
    """Least privilege for the application's database role (not the owner of the tables).

    The role may read and append to the ledger and seal events (the four sealing columns), but
    has no DELETE, no TRUNCATE and no other UPDATE; the triggers refuse the rest even to it.
    Captures are insert-only: the role links them to events only through
    ``audit_rowchange_settle``, which checks every link.
    """
    event_columns = ", ".join(EVENT_INSERT_COLUMNS)
    capture_columns = ", ".join(CAPTURE_INSERT_COLUMNS)
    return f"""
REVOKE ALL ON audit_auditevent, audit_signedtreehead, audit_rowchange, audit_prunedleaf FROM {app_role};
GRANT SELECT ON audit_auditevent, audit_signedtreehead, audit_rowchange, audit_prunedleaf TO {app_role};
GRANT INSERT ({event_columns}) ON audit_auditevent TO {app_role};
GRANT INSERT ON audit_signedtreehead TO {app_role};
GRANT UPDATE (sequence, leaf_hash, chain_hash, sealed_at) ON audit_auditevent TO {app_role};
GRANT SELECT, INSERT, UPDATE ON audit_ledgerstate TO {app_role};
GRANT INSERT ({capture_columns}) ON audit_rowchange TO {app_role};
GRANT EXECUTE ON FUNCTION audit_rowchange_settle(bigint[], bigint[]) TO {app_role};
GRANT EXECUTE ON FUNCTION audit_prune(bigint, bigint[]) TO {app_role};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {app_role};
"""


def capture_operation(*tables: tuple[str, str, tuple[str, ...]]):
    """A migration operation that puts the completeness backstop on ``tables`` (PostgreSQL), and
    takes it off when the migration is reversed. Each table is (name, primary key, hidden columns)."""

    def install(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for table, pk, hidden in tables:
                schema_editor.execute(capture_triggers_sql(table, pk, hidden), params=None)

    def uninstall(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for table, _, _ in tables:
                schema_editor.execute(drop_capture_triggers_sql(table), params=None)

    return migrations.RunPython(install, uninstall)


# Retention (migration 0011). A sealed event may be deleted only once its leaf is kept: a row of
# ``audit_prunedleaf`` with its sequence, leaf hash and chain hash, so that the tree, the chain and
# every proof stay whole. Kept leaves are append-only. On PostgreSQL the application role has no
# DELETE on the ledger: it prunes only through ``audit_prune``, which keeps the leaves itself and
# refuses unless the archive run is pruning, its ``retention.pruned`` event (naming the archive
# and its file's digest) is sealed, and each event is older than the hard floor below — so even
# a compromised application cannot delete a recent event, nor one no sealed record accounts for.
RETENTION_HARD_FLOOR = "6 months"  # the EU AI Act's minimum for high-risk AI logs; no policy goes below

POSTGRES_PRUNE = f"""
CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.sequence IS NULL AND NEW.sequence IS NOT NULL
       AND OLD.leaf_hash IS NULL AND OLD.chain_hash IS NULL AND OLD.sealed_at IS NULL
       AND {unchanged((*EVENT_CONTENT_COLUMNS, "search", "transaction_id"))} THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' AND OLD.sequence IS NOT NULL AND EXISTS (
        SELECT 1 FROM audit_prunedleaf AS p WHERE p.sequence = OLD.sequence
           AND p.leaf_hash = OLD.leaf_hash AND p.chain_hash = OLD.chain_hash) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit ledger is append-only: % of event % refused', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE FUNCTION audit_prunedleaf_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'kept leaves are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_prunedleaf_immutable BEFORE UPDATE OR DELETE ON audit_prunedleaf
    FOR EACH ROW EXECUTE FUNCTION audit_prunedleaf_guard();

CREATE OR REPLACE FUNCTION audit_prune(archive bigint, sequences bigint[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    run audit_ledgerarchive%ROWTYPE;
    deleted bigint;
BEGIN
    SELECT * INTO run FROM audit_ledgerarchive WHERE id = archive;
    IF NOT FOUND OR run.state <> 'pruning' OR run.file_sha256 = '' OR NOT EXISTS (
        SELECT 1 FROM audit_auditevent AS e
        WHERE e.action = 'retention.pruned' AND e.sequence IS NOT NULL
          AND e.data ->> 'archive' = run.uid::text AND e.data ->> 'file_sha256' = run.file_sha256
    ) THEN
        RAISE EXCEPTION 'archive run % may not prune: it must be pruning, with its retention.pruned event sealed', archive
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO audit_prunedleaf (sequence, leaf_hash, chain_hash, archive_id)
    SELECT e.sequence, e.leaf_hash, e.chain_hash, run.id FROM audit_auditevent AS e
    WHERE e.sequence = ANY(sequences) AND e.sequence <= run.tree_size
      AND e.occurred_at < now() - interval '{RETENTION_HARD_FLOOR}';
    DELETE FROM audit_rowchange AS c USING audit_auditevent AS e, audit_prunedleaf AS p
    WHERE c.event_id = e.id AND e.sequence = ANY(sequences) AND p.sequence = e.sequence AND p.archive_id = run.id;
    DELETE FROM audit_auditevent AS e USING audit_prunedleaf AS p
    WHERE e.sequence = ANY(sequences) AND p.sequence = e.sequence AND p.archive_id = run.id;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END $$;
REVOKE ALL ON FUNCTION audit_prune(bigint, bigint[]) FROM PUBLIC;
"""  # noqa: S608 (constants of this module, no input)

POSTGRES_PRUNE_REVERSE = """
DROP FUNCTION IF EXISTS audit_prune(bigint, bigint[]);
DROP TRIGGER IF EXISTS audit_prunedleaf_immutable ON audit_prunedleaf;
DROP FUNCTION IF EXISTS audit_prunedleaf_guard();
"""

SQLITE_PRUNE = [
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
    "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_auditevent WHEN NOT EXISTS ("
    "SELECT 1 FROM audit_prunedleaf AS p WHERE OLD.sequence IS NOT NULL AND p.sequence = OLD.sequence "
    "AND p.leaf_hash = OLD.leaf_hash AND p.chain_hash = OLD.chain_hash) "
    "BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only: DELETE refused'); END",
    "CREATE TRIGGER audit_prunedleaf_no_update BEFORE UPDATE ON audit_prunedleaf "
    "BEGIN SELECT RAISE(ABORT, 'kept leaves are append-only: UPDATE refused'); END",
    "CREATE TRIGGER audit_prunedleaf_no_delete BEFORE DELETE ON audit_prunedleaf "
    "BEGIN SELECT RAISE(ABORT, 'kept leaves are append-only: DELETE refused'); END",
]
SQLITE_PRUNE_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_prunedleaf_no_update",
    "DROP TRIGGER IF EXISTS audit_prunedleaf_no_delete",
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
    SQLITE_IMMUTABILITY[0],
]
