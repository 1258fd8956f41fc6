"""Authorization matrix of the control panel: every role × every admin URL × own/sibling/foreign
(and, for records of an organisation itself, such as its own ledger events, org/foreign_org).

The table below is the specification. A model registered in the admin without rows here fails
``test_matrix_covers_every_admin_url``; any cell that differs fails the matrix test. Legend:
OK 200 · DENY 403 · LOGIN redirected to the control-panel login · MISSING redirected to the
index because the object is not visible to this user (it is indistinguishable from a missing one).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from governance.admin_site import site
from tests.conftest import MATRIX_ROLES
from tests.governance.admin_world import objects_of

# The credentials admin reads the secrets store.
pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

OK, DENY, LOGIN, MISSING = "OK", "DENY", "LOGIN", "MISSING"
COLUMNS = ("anonymous", *MATRIX_ROLES)
# own: of workspace ``ws``; sibling: of another workspace of the organisation; foreign: of another
# organisation; org and foreign_org: a record of the organisation itself, without a workspace.
SCOPES = ("own", "sibling", "foreign", "org", "foreign_org")
VIEWS = ("changelist", "add", "change", "delete", "history")
OBJECT_VIEWS = ("change", "delete", "history")

# fmt: off
# Non-admin roles (builder, operator, viewer) and anonymous visitors never get in: LOGIN.
# The organisation auditor (last column) opens the control panel to read the organisation's own
# events and order packages of them, the user accounts (user.view) and the roles; it reaches no
# workspace's rows, so every other list is refused (DENY) and no workspace's record opens.
_ = LOGIN
# columns:             anon p.admin owner    bld/op/view  officer  auditor  org. auditor
MATRIX = {
    # Users: platform administrators only; nobody deletes accounts (they are deactivated).
    "accounts.user": {
        "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    OK),
        "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    OK),
        "change/sibling":  (_, OK,      DENY,    _, _, _, DENY,    DENY,    OK),
        "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY,    MISSING),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING, OK),
        "history/sibling": (_, OK,      MISSING, _, _, _, MISSING, MISSING, OK),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    # Single sign-on configuration: platform administrators of the organisation only
    # (organization.manage). Providers and policies are never deleted (they are disabled);
    # mappings are added and removed, never edited (their change page is read-only).
    "accounts.identityprovider": {
        "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    "accounts.grouprolemapping": {
        "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    # One policy per organisation: added once (the add page refuses once it exists).
    "accounts.signinpolicy": {
        "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    "tenancy.organization": {
        "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    # Officers and auditors see their workspace read-only (200 on the change page, no save).
    "tenancy.workspace": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
        "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
        "change/sibling":  (_, OK,      MISSING, _, _, _, MISSING, MISSING, DENY),
        "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING, DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      OK,      MISSING),
        "history/sibling": (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    # Owners manage their own workspace's members only; the platform administrator all of the org.
    "tenancy.membership": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
        "add":             (_, OK,      OK,      _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
        "change/sibling":  (_, OK,      MISSING, _, _, _, MISSING, MISSING, DENY),
        "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING, DENY),
        "delete/own":      (_, OK,      OK,      _, _, _, DENY,    DENY,    DENY),
        "delete/sibling":  (_, OK,      MISSING, _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, MISSING, MISSING, _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      OK,      MISSING),
        "history/sibling": (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    # The role table is read-only for everyone: it changes by migration.
    "tenancy.role": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      OK,      OK),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      OK,      OK),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      OK,      OK),
    },
    # The ledger is read-only for everyone; the platform administrator does not read it. The
    # organisation's own events (sign-ins, accounts: no workspace) are read by the organisation
    # auditor alone; it reads no workspace's events.
    "audit.auditevent": {
        "changelist":      (_, DENY,    OK,      _, _, _, OK,      OK,      OK),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, DENY,    OK,      _, _, _, OK,      OK,      MISSING),
        "change/sibling":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING, MISSING),
        "change/foreign":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING, MISSING),
        "change/org":      (_, DENY,    MISSING, _, _, _, MISSING, MISSING, OK),
        "change/foreign_org": (_, DENY, MISSING, _, _, _, MISSING, MISSING, MISSING),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/org":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign_org": (_, DENY, DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, MISSING, OK,      _, _, _, OK,      OK,      MISSING),
        "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/org":     (_, MISSING, MISSING, _, _, _, MISSING, MISSING, OK),
        "history/foreign_org": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    # Policies: shipped and own ones, read-only; a change is proposed (officers only) and decided apart.
    "access.policy": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
        "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING, DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      OK,      MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    "access.policychange": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
        "add":             (_, DENY,    DENY,    _, _, _, OK,      DENY,    DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
        "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING, DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      OK,      MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    # On-call overrides: taken by those on call (owners here; builders and operators on their page).
    "access.oncalloverride": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
        "add":             (_, DENY,    OK,      _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
        "change/sibling":  (_, OK,      MISSING, _, _, _, MISSING, MISSING, DENY),
        "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING, DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      OK,      MISSING),
        "history/sibling": (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    # Workflows and their changes: members with a control-panel role read them; the platform
    # administrator sees no workflow data; reviews go through the decision page, never edits.
    "workflows.workflow": {
        "changelist":      (_, DENY,    OK,      _, _, _, OK,      OK,      DENY),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, DENY,    OK,      _, _, _, OK,      OK,      DENY),
        "change/sibling":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING, DENY),
        "change/foreign":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING, DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, MISSING, OK,      _, _, _, OK,      OK,      MISSING),
        "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    # A workspace's AI limits: set by those who may halt its runs (the world makes no row).
    "workflows.aicontrols": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      DENY,    DENY),
        "add":             (_, OK,      OK,      _, _, _, OK,      DENY,    DENY),
    },
    # Halts: seen and raised by those who may halt (owners, officers, platform administrators
    # for every workspace of their organisation); raised and released on their own pages.
    # SIEM sinks: organisation administrators only (organization.manage); a sink is disabled,
    # never deleted. Dead letters are made by the pump: replayed or acknowledged, never added.
    "siem.sink": {
        "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    "siem.deadletter": {
        "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    "workflows.halt": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      DENY,    DENY),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      DENY,    DENY),
        "change/sibling":  (_, OK,      MISSING, _, _, _, MISSING, DENY,    DENY),
        "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, DENY,    DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      MISSING, MISSING),
        "history/sibling": (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    # Runs, read-only, for those who see run data (owners, officers); the platform administrator and
    # the auditor see none.
    "workflows.execution": {
        "changelist":      (_, DENY,    OK,      _, _, _, OK,      DENY,    DENY),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, DENY,    OK,      _, _, _, OK,      DENY,    DENY),
        "change/sibling":  (_, DENY,    MISSING, _, _, _, MISSING, DENY,    DENY),
        "change/foreign":  (_, DENY,    MISSING, _, _, _, MISSING, DENY,    DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, MISSING, OK,      _, _, _, OK,      MISSING, MISSING),
        "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
    "workflows.changerequest": {
        "changelist":      (_, DENY,    OK,      _, _, _, OK,      OK,      DENY),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "change/own":      (_, DENY,    OK,      _, _, _, OK,      OK,      DENY),
        "change/sibling":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING, DENY),
        "change/foreign":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING, DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
        "history/own":     (_, MISSING, OK,      _, _, _, OK,      OK,      MISSING),
        "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    },
}
# The AI register (organisation-wide): read by every control-panel role, never edited in place —
# officers propose changes (a second officer decides them on their own page).
_AI_REGISTER_ENTRY = {
    "changelist":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
    "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "change/own":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
    "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING, DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "history/own":     (_, OK,      OK,      _, _, _, OK,      OK,      MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
}
MATRIX["workflows.aiprovider"] = _AI_REGISTER_ENTRY
MATRIX["workflows.aimodel"] = _AI_REGISTER_ENTRY
MATRIX["workflows.registerchange"] = {**_AI_REGISTER_ENTRY,
    "add":             (_, DENY,    DENY,    _, _, _, OK,      DENY,    DENY),
}
# Bias tests: recorded by officers, read across the organisation's workspaces like the register.
MATRIX["workflows.biastest"] = {
    "changelist":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
    "add":             (_, DENY,    DENY,    _, _, _, OK,      DENY,    DENY),
    "change/own":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
    "change/sibling":  (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
    "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING, DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "history/own":     (_, OK,      OK,      _, _, _, OK,      OK,      MISSING),
    "history/sibling": (_, OK,      OK,      _, _, _, OK,      OK,      MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
}
# Service accounts: workspace owners manage their own workspace's only; nobody deletes one (it is
# disabled) and nobody edits its row (tokens, disabling and reactivation are their own pages).
MATRIX["workflows.serviceaccount"] = {
    "changelist":      (_, DENY,    OK,      _, _, _, DENY,    DENY,    DENY),
    "add":             (_, DENY,    OK,      _, _, _, DENY,    DENY,    DENY),
    "change/own":      (_, DENY,    OK,      _, _, _, DENY,    DENY,    DENY),
    "change/sibling":  (_, DENY,    MISSING, _, _, _, DENY,    DENY,    DENY),
    "change/foreign":  (_, DENY,    MISSING, _, _, _, DENY,    DENY,    DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "history/own":     (_, MISSING, OK,      _, _, _, MISSING, MISSING, MISSING),
    "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
}
# Connector types: officers and platform administrators register and vet them (the change page is
# the vetting form); allow-list rules: platform administrators only, added or removed, never edited;
# integrations: owners connect and configure their workspace's, officers and auditors read them.
MATRIX["workflows.connectortype"] = {
    "changelist":      (_, OK,      DENY,    _, _, _, OK,      DENY,    DENY),
    "add":             (_, OK,      DENY,    _, _, _, OK,      DENY,    DENY),
    "change/own":      (_, OK,      DENY,    _, _, _, OK,      DENY,    DENY),
    "change/foreign":  (_, MISSING, DENY,    _, _, _, MISSING, DENY,    DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "history/own":     (_, OK,      MISSING, _, _, _, OK,      MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
}
MATRIX["workflows.networkallowrule"] = {
    "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
    "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
    "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
    "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY,    DENY),
    "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
}
MATRIX["workflows.integration"] = {
    "changelist":      (_, DENY,    OK,      _, _, _, OK,      OK,      DENY),
    "add":             (_, DENY,    OK,      _, _, _, DENY,    DENY,    DENY),
    "change/own":      (_, DENY,    OK,      _, _, _, OK,      OK,      DENY),
    "change/sibling":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING, DENY),
    "change/foreign":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING, DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "history/own":     (_, MISSING, OK,      _, _, _, OK,      OK,      MISSING),
    "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
}
# Keys: read-only status pages for key viewers of the workspace (platform administrators see every
# workspace of their organisation); rotation and BYOK are their own pages.
_KEY_STATUS_ROWS = {
    "changelist":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
    "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "change/own":      (_, OK,      OK,      _, _, _, OK,      OK,      DENY),
    "change/sibling":  (_, OK,      MISSING, _, _, _, MISSING, MISSING, DENY),
    "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING, DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "history/own":     (_, OK,      OK,      _, _, _, OK,      OK,      MISSING),
    "history/sibling": (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
}
for _label in ("crypto.keyencryptionkey", "crypto.datakey", "crypto.rotationjob"):
    MATRIX[_label] = _KEY_STATUS_ROWS
# Credentials (in the secrets store): workspace owners only, never deleted (versions are revoked).
MATRIX["workflows.credential"] = {
    "changelist":      (_, DENY,    OK,      _, _, _, DENY,    DENY,    DENY),
    "add":             (_, DENY,    OK,      _, _, _, DENY,    DENY,    DENY),
    "change/own":      (_, DENY,    OK,      _, _, _, DENY,    DENY,    DENY),
    "change/sibling":  (_, DENY,    MISSING, _, _, _, DENY,    DENY,    DENY),
    "change/foreign":  (_, DENY,    MISSING, _, _, _, DENY,    DENY,    DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "history/own":     (_, MISSING, OK,      _, _, _, MISSING, MISSING, MISSING),
    "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
}
# The incident runbook: owners and compliance officers start and follow it; it is never edited.
MATRIX["workflows.credentialrunbook"] = {
    "changelist":      (_, DENY,    OK,      _, _, _, OK,      DENY,    DENY),
    "add":             (_, DENY,    OK,      _, _, _, OK,      DENY,    DENY),
    "change/own":      (_, DENY,    OK,      _, _, _, OK,      DENY,    DENY),
    "change/sibling":  (_, DENY,    MISSING, _, _, _, MISSING, DENY,    DENY),
    "change/foreign":  (_, DENY,    MISSING, _, _, _, MISSING, DENY,    DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "history/own":     (_, MISSING, OK,      _, _, _, OK,      MISSING, MISSING),
    "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
}
# Evidence orders: auditors order packages of their workspaces and see only their own orders;
# the organisation auditor orders packages of the organisation's own events and sees only its own
# orders; nobody edits or deletes one (it expires).
MATRIX["audit.evidenceorder"] = {
    "changelist":      (_, DENY,    DENY,    _, _, _, DENY,    OK,      OK),
    "add":             (_, DENY,    DENY,    _, _, _, DENY,    OK,      OK),
    "change/own":      (_, DENY,    DENY,    _, _, _, DENY,    OK,      MISSING),
    "change/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    MISSING, MISSING),
    "change/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    MISSING, MISSING),
    "change/org":      (_, DENY,    DENY,    _, _, _, DENY,    MISSING, OK),
    "change/foreign_org": (_, DENY, DENY,    _, _, _, DENY,    MISSING, MISSING),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/org":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign_org": (_, DENY, DENY,    _, _, _, DENY,    DENY,    DENY),
    "history/own":     (_, MISSING, MISSING, _, _, _, MISSING, OK,      MISSING),
    "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
    "history/org":     (_, MISSING, MISSING, _, _, _, MISSING, MISSING, OK),
    "history/foreign_org": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
}
# Retention (docs/retention.md): a workspace's compliance officers set its frameworks and place its
# holds, its auditors read them; holds over the whole organisation are its platform
# administrators', read by its organisation auditors. Rows are checked in tests/audit/
# test_retention_admin.py (forged scopes, another organisation's rows).
MATRIX["audit.retentionpolicy"] = {
    "changelist":      (_, DENY,    DENY,    _, _, _, OK,      OK,      DENY),
    "add":             (_, DENY,    DENY,    _, _, _, OK,      DENY,    DENY),
}
MATRIX["audit.legalhold"] = {
    "changelist":      (_, OK,      DENY,    _, _, _, OK,      OK,      OK),
    "add":             (_, OK,      DENY,    _, _, _, OK,      DENY,    DENY),
}
# Organisation configuration (platform administrators of their own organisation only, through
# organization.manage): SCIM tokens are created and revoked, never edited or deleted; SCIM groups
# are read-only, written by the identity provider (the organisation auditor reads them with the
# user accounts, user.view); the conditional-access policy is switched off, never deleted.
_ORG_CONFIG_ROWS = {
    "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
    "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
    "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    DENY),
    "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
}
MATRIX["accounts.scimtoken"] = _ORG_CONFIG_ROWS
MATRIX["accounts.scimgroup"] = {
    "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    OK),
    "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY,    OK),
    "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY,    MISSING),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY,    DENY),
    "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING, OK),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING, MISSING),
}
MATRIX["accounts.conditionalaccesspolicy"] = _ORG_CONFIG_ROWS
# fmt: on


def targets(world, model, view: str, scope: str | None) -> str | None:
    """The URL of ``view`` for ``model`` (on the ``scope`` object for object views)."""
    meta = model._meta
    name = f"admin:{meta.app_label}_{meta.model_name}_{view}"
    if scope is None:
        return reverse(name)
    obj = objects_of(world, meta.label_lower).get(scope)
    return None if obj is None else reverse(name, args=[obj.pk])


def classify(response) -> str:
    if response.status_code == 200:
        return OK
    if response.status_code == 403:
        return DENY
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith(reverse("admin:login")):
            return LOGIN
        if location == reverse("admin:index"):
            return MISSING
        return ELSEWHERE if location.startswith(reverse("admin:index")) else f"302 to {location}"
    return str(response.status_code)


def _cells():
    for label, rows in MATRIX.items():
        for key, expected in rows.items():
            view, _, scope = key.partition("/")
            for column, status in zip(COLUMNS, expected, strict=True):
                yield pytest.param(label, view, scope or None, column, status, id=f"{label}:{key}:{column}")


def _expected_keys(world) -> set[tuple[str, str]]:
    keys = set()
    for model in site._registry:
        label = model._meta.label_lower
        for view in VIEWS:
            if view not in OBJECT_VIEWS:
                keys.add((label, view))
                continue
            for scope in SCOPES:
                if targets(world, model, view, scope) is not None:
                    keys.add((label, f"{view}/{scope}"))
    return keys


def test_matrix_covers_every_admin_url(shared_world):
    """Every registered model × view × scope has a row, and the table has no stale rows."""
    world = shared_world
    in_table = {(label, key) for label, rows in MATRIX.items() for key in rows}
    assert in_table == _expected_keys(world)
    for rows in MATRIX.values():
        assert all(len(expected) == len(COLUMNS) for expected in rows.values())


@pytest.fixture(scope="module")
def signed_in(_module_world):
    """Per role, the cookie of a session signed in with MFA passed (what ``client.force_login``
    gives a test), made once with the module's world: a cell's request, and anything it writes to
    the session, is rolled back with the cell."""
    from django.conf import settings
    from django.test import Client

    from tests.conftest import mfa_complete

    cookies = {}
    for code, user in _module_world.users.items():
        client = Client()
        client.force_login(user)
        mfa_complete(client, user)
        cookies[code] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return cookies


@pytest.mark.parametrize(("label", "view", "scope", "column", "expected"), list(_cells()))
def test_admin_matrix(shared_world, signed_in, client, label, view, scope, column, expected):
    from django.conf import settings

    world = shared_world
    model = next(m for m in site._registry if m._meta.label_lower == label)
    if column != "anonymous":
        client.cookies[settings.SESSION_COOKIE_NAME] = signed_in[column]
    response = client.get(targets(world, model, view, scope))
    assert classify(response) == expected


def test_no_unexpected_allows_via_post(shared_world, client):
    """Writes are refused for roles that may only view: a POST to a change page changes nothing."""
    world = shared_world
    membership = world.memberships["viewer"]
    client.force_login(world.users["compliance_officer"])
    url = reverse("admin:tenancy_membership_change", args=[membership.pk])
    response = client.post(url, {"role": "workspace_owner"})
    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role_id == "viewer"


# The roles granting admin.access.
CONTROL_PANEL_ROLES = {
    "platform_admin",
    "workspace_owner",
    "compliance_officer",
    "auditor",
    "organization_auditor",
}


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("anonymous", LOGIN),
        *((code, OK if code in CONTROL_PANEL_ROLES else LOGIN) for code in MATRIX_ROLES),
    ],
)
def test_control_panel_index(shared_world, client, column, expected):
    """Only roles granting admin.access open the control panel; the others are sent to log in."""
    world = shared_world
    if column != "anonymous":
        client.force_login(world.users[column])
    assert classify(client.get(reverse("admin:index"))) == expected


# --- Custom admin views -----------------------------------------------------------------------
# Every named URL of the control panel beyond the five views of each model (the table above):
# the site's own pages and each admin's extra pages (``get_urls``). Each row is one GET, as each
# column; a new admin URL without rows here fails ``test_custom_matrix_covers_every_admin_url``.
# More outcomes: GONE 404 (the page's object is not one this user may see, or the page has nothing
# to show) · GET_REFUSED 405 · ELSEWHERE redirected to another page of the control panel.
GONE, GET_REFUSED, ELSEWHERE = "404", "405", "ELSEWHERE"
# fmt: off
# columns:             anon p.admin   owner      bld/op/view  officer    auditor     org. auditor
# The organisation auditor reaches no workspace's record: every page on one answers as missing
# (GONE), or is refused (DENY) where the page asks for an action before it looks for the object;
# of the organisation's records it sees only the user accounts, and changes nothing.
# People's sign-in: platform administrators of the organisation (user.manage); the organisation
# auditor sees the accounts (user.view) but may not act on them.
_SEE_USERS = {
    "own":              (_, OK,       GONE,      _, _, _, GONE,      GONE,       DENY),
    "sibling":          (_, OK,       GONE,      _, _, _, GONE,      GONE,       DENY),
    "foreign":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
}
_ACCOUNT_PAGE = {  # a service account's token, disable and reactivate pages: as its change page
    "own":              (_, DENY,     OK,        _, _, _, DENY,      DENY,       DENY),
    "sibling":          (_, DENY,     GONE,      _, _, _, DENY,      DENY,       DENY),
    "foreign":          (_, DENY,     GONE,      _, _, _, DENY,      DENY,       DENY),
}
CUSTOM_MATRIX: dict[str, dict[str, tuple[str, ...]]] = {
    # The site's own pages. Signed-in control-panel roles asking for the login page go to the index.
    "index":                {"page": (_, OK, OK, _, _, _, OK, OK, OK)},
    "app_list":             {"page": (_, OK, OK, _, _, _, OK, OK, OK)},
    "login":                {"page": (OK, MISSING, MISSING, OK, OK, OK, MISSING, MISSING, MISSING)},
    "logout":               {"page": (MISSING, GET_REFUSED, GET_REFUSED, MISSING, MISSING, MISSING,
                                      GET_REFUSED, GET_REFUSED, GET_REFUSED)},
    "password_change":      {"page": (_, OK, OK, _, _, _, OK, OK, OK)},
    "password_change_done": {"page": (_, OK, OK, _, _, _, OK, OK, OK)},
    "jsi18n":               {"page": (_, OK, OK, _, _, _, OK, OK, OK)},
    # Only fields a governed admin declares (none today) are answered; a bare request is refused.
    "autocomplete":         {"page": (_, DENY, DENY, _, _, _, DENY, DENY, DENY)},
    # No governed model has a public page of its own: nothing to redirect to, for anyone.
    "view_on_site": {
        "own":              (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
        "sibling":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
        "foreign":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
    },
    "accounts_user_force_logout": _SEE_USERS,
    "accounts_user_unlock": _SEE_USERS,
    "accounts_user_mfa_reset": _SEE_USERS,
    "accounts_scimtoken_revoke": {
        "own":              (_, OK,       GONE,      _, _, _, GONE,      GONE,       GONE),
        "foreign":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
    },
    # Trying the policies is reading them (policy.view).
    "access_policy_try":    {"page": (_, OK, OK, _, _, _, OK, OK, DENY)},
    # Policy changes are decided by compliance officers, never by their proposer.
    "access_policychange_decide": {
        "own":              (_, DENY,     DENY,      _, _, _, OK,        DENY,       GONE),
        "foreign":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
    },
    # Ending an override is a POST; a GET goes back to the override's page.
    "access_oncalloverride_end": {
        "own":              (_, ELSEWHERE, ELSEWHERE, _, _, _, ELSEWHERE, ELSEWHERE,  GONE),
        "sibling":          (_, ELSEWHERE, GONE,     _, _, _, GONE,      GONE,       GONE),
        "foreign":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
    },
    # Keys: owners bring their own and rotate their workspace's (key.manage).
    "crypto_keyencryptionkey_byok": {"page": (_, DENY, OK, _, _, _, DENY, DENY, DENY)},
    "crypto_datakey_rotate": {
        "own":              (_, DENY,     OK,        _, _, _, DENY,      DENY,       GONE),
        "sibling":          (_, DENY,     GONE,      _, _, _, GONE,      GONE,       GONE),
        "foreign":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
    },
    "workflows_serviceaccount_token": _ACCOUNT_PAGE,
    "workflows_serviceaccount_disable": _ACCOUNT_PAGE,
    "workflows_serviceaccount_reactivate": _ACCOUNT_PAGE,
    # Reviews: the approvers of a tier decide; the platform administrator sees no workflow data.
    "workflows_changerequest_decide": {
        "own":              (_, GONE,     DENY,      _, _, _, OK,        DENY,       GONE),
        "sibling":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
        "foreign":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
    },
    # Apply now is a POST (tests/workflows/test_waiting.py); a GET is refused on a change one may
    # see, and answers as missing on any other.
    "workflows_changerequest_apply": {
        "own":              (_, GONE,     GET_REFUSED, _, _, _, GET_REFUSED, GET_REFUSED, GONE),
        "sibling":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
        "foreign":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
    },
    # Quarantine and reactivation of a workflow: owners and compliance officers.
    "workflows_workflow_status": {
        "own":              (_, GONE,     OK,        _, _, _, OK,        DENY,       GONE),
        "sibling":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
        "foreign":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
    },
    # A workflow's webhook secret: its workspace's owners (credential.manage).
    "workflows_workflow_webhook_secret": {
        "own":              (_, GONE,     OK,        _, _, _, DENY,      DENY,       GONE),
        "sibling":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
        "foreign":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
    },
    # AI register changes: decided by a compliance officer who did not propose them.
    "workflows_registerchange_decide": {
        "own":              (_, DENY,     DENY,      _, _, _, OK,        DENY,       GONE),
        "foreign":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
    },
    # Halting: owners and officers of the workspace, platform administrators of the organisation.
    "workflows_halt_raise": {"page": (_, OK, OK, _, _, _, OK, DENY, DENY)},
    "workflows_halt_release": {
        "own":              (_, OK,       OK,        _, _, _, OK,        GONE,       GONE),
        "sibling":          (_, OK,       GONE,      _, _, _, GONE,      GONE,       GONE),
        "foreign":          (_, GONE,     GONE,      _, _, _, GONE,      GONE,       GONE),
    },
}
# fmt: on

# The model whose object each custom page takes (None: the page takes no object).
CUSTOM_OBJECTS: dict[str, str | None] = {
    "index": None,
    "login": None,
    "logout": None,
    "password_change": None,
    "password_change_done": None,
    "jsi18n": None,
    "autocomplete": None,
    "app_list": None,
    "view_on_site": "tenancy.workspace",
    "accounts_user_force_logout": "accounts.user",
    "accounts_user_unlock": "accounts.user",
    "accounts_user_mfa_reset": "accounts.user",
    "accounts_scimtoken_revoke": "accounts.scimtoken",
    "access_policy_try": None,
    "access_policychange_decide": "access.policychange",
    "access_oncalloverride_end": "access.oncalloverride",
    "crypto_keyencryptionkey_byok": None,
    "crypto_datakey_rotate": "crypto.datakey",
    "workflows_serviceaccount_token": "workflows.serviceaccount",
    "workflows_serviceaccount_disable": "workflows.serviceaccount",
    "workflows_serviceaccount_reactivate": "workflows.serviceaccount",
    "workflows_changerequest_decide": "workflows.changerequest",
    "workflows_changerequest_apply": "workflows.changerequest",
    "workflows_workflow_status": "workflows.workflow",
    "workflows_workflow_webhook_secret": "workflows.workflow",
    "workflows_halt_raise": None,
    "workflows_registerchange_decide": "workflows.registerchange",
    "workflows_halt_release": "workflows.halt",
}


def admin_url_names() -> set[str]:
    """The name of every URL pattern of the control panel."""
    from django.urls import URLResolver

    names: set[str] = set()

    def walk(patterns) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif pattern.name:
                names.add(pattern.name)

    walk(site.get_urls())
    return names


def custom_url_names() -> set[str]:
    """The control panel's URL names that are not one of the five views of a registered model."""
    standard = {
        f"{model._meta.app_label}_{model._meta.model_name}_{view}"
        for model in site._registry
        for view in VIEWS
    }
    return admin_url_names() - standard


def custom_target(world, name: str, scope: str) -> str | None:
    """The URL of custom page ``name`` (on the ``scope`` object when it takes one)."""
    from django.contrib.contenttypes.models import ContentType

    label = CUSTOM_OBJECTS[name]
    if label is None:
        return reverse(f"admin:{name}", args=["tenancy"]) if name == "app_list" else reverse(f"admin:{name}")
    obj = objects_of(world, label).get(scope)
    if obj is None:
        return None
    if name == "view_on_site":
        return reverse(f"admin:{name}", args=[ContentType.objects.get_for_model(obj).pk, obj.pk])
    return reverse(f"admin:{name}", args=[obj.pk])


def _custom_cells():
    for name, rows in CUSTOM_MATRIX.items():
        for scope, expected in rows.items():
            for column, status in zip(COLUMNS, expected, strict=True):
                yield pytest.param(name, scope, column, status, id=f"{name}:{scope}:{column}")


def test_custom_matrix_covers_every_admin_url():
    """Every control-panel URL beyond the five views of each model has rows here (and a known
    object), and the table has no stale rows: a new admin page fails until it is specified."""
    assert set(CUSTOM_MATRIX) == custom_url_names()
    assert set(CUSTOM_OBJECTS) == custom_url_names()
    for name, rows in CUSTOM_MATRIX.items():
        assert all(len(expected) == len(COLUMNS) for expected in rows.values()), name
        expected_scopes = {"page"} if CUSTOM_OBJECTS[name] is None else {"own", "sibling", "foreign"}
        assert set(rows) <= expected_scopes, name


def test_custom_matrix_rows_reach_their_objects(shared_world):
    """Each object row of the table names an object the world has (no row tests nothing)."""
    for name, rows in CUSTOM_MATRIX.items():
        for scope in rows:
            assert custom_target(shared_world, name, scope if scope != "page" else "own") is not None, (
                name,
                scope,
            )


@pytest.mark.parametrize(("name", "scope", "column", "expected"), list(_custom_cells()))
def test_custom_admin_matrix(shared_world, signed_in, client, name, scope, column, expected):
    """GIVEN a role (or nobody) WHEN it opens a custom control-panel page, on an own, sibling or
    foreign object THEN the answer is the table's; a page it may open never names the other
    organisation's object."""
    from django.conf import settings

    world = shared_world
    if column != "anonymous":
        client.cookies[settings.SESSION_COOKIE_NAME] = signed_in[column]
    response = client.get(custom_target(world, name, scope if scope != "page" else "own"))
    assert classify(response) == expected
    if response.status_code == 200:
        page = response.content.decode()
        assert world.foreign.name not in page
        assert world.foreign_user.email not in page
