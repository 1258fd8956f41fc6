"""Authorization matrix of the control panel: every role × every admin URL × own/sibling/foreign.

The table below is the specification. A model registered in the admin without rows here fails
``test_matrix_covers_every_admin_url``; any cell that differs fails the matrix test. Legend:
OK 200 · DENY 403 · LOGIN redirected to the control-panel login · MISSING redirected to the
index because the object is not visible to this user (it is indistinguishable from a missing one).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from governance.admin_site import site
from tests.accounts.conditional_world import conditional_access_of
from tests.accounts.scim_world import scim_objects_of
from tests.accounts.sso_admin_world import sso_objects_of
from tests.audit.evidence_world import evidence_orders_of
from tests.conftest import ROLE_ORDER
from tests.workflows.network_boundary_world import network_boundary_of
from tests.workflows.secrets_world import secrets_objects_of
from tests.workflows.service_account_world import service_accounts_of

# The credentials admin reads the secrets store.
pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

OK, DENY, LOGIN, MISSING = "OK", "DENY", "LOGIN", "MISSING"
COLUMNS = ("anonymous", *ROLE_ORDER)
VIEWS = ("changelist", "add", "change", "delete", "history")
OBJECT_VIEWS = ("change", "delete", "history")

# fmt: off
# Non-admin roles (builder, operator, viewer) and anonymous visitors never get in: LOGIN.
_ = LOGIN
# columns:             anon p.admin owner    bld/op/view  officer  auditor
MATRIX = {
    # Users: platform administrators only; nobody deletes accounts (they are deactivated).
    "accounts.user": {
        "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "change/sibling":  (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING),
        "history/sibling": (_, OK,      MISSING, _, _, _, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
    # Single sign-on configuration: platform administrators of the organisation only
    # (organization.manage). Providers and policies are never deleted (they are disabled);
    # mappings are added and removed, never edited (their change page is read-only).
    "accounts.identityprovider": {
        "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
    "accounts.grouprolemapping": {
        "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY),
        "delete/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "delete/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
    # One policy per organisation: added once (the add page refuses once it exists).
    "accounts.signinpolicy": {
        "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
    "tenancy.organization": {
        "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
    # Officers and auditors see their workspace read-only (200 on the change page, no save).
    "tenancy.workspace": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      OK),
        "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      OK),
        "change/sibling":  (_, OK,      MISSING, _, _, _, MISSING, MISSING),
        "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      OK),
        "history/sibling": (_, OK,      MISSING, _, _, _, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
    # Owners manage their own workspace's members only; the platform administrator all of the org.
    "tenancy.membership": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      OK),
        "add":             (_, OK,      OK,      _, _, _, DENY,    DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      OK),
        "change/sibling":  (_, OK,      MISSING, _, _, _, MISSING, MISSING),
        "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
        "delete/own":      (_, OK,      OK,      _, _, _, DENY,    DENY),
        "delete/sibling":  (_, OK,      MISSING, _, _, _, DENY,    DENY),
        "delete/foreign":  (_, MISSING, MISSING, _, _, _, DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      OK),
        "history/sibling": (_, OK,      MISSING, _, _, _, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
    # The role table is read-only for everyone: it changes by migration.
    "tenancy.role": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      OK),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      OK),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      OK),
    },
    # The ledger is read-only for everyone; the platform administrator does not read it.
    "audit.auditevent": {
        "changelist":      (_, DENY,    OK,      _, _, _, OK,      OK),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "change/own":      (_, DENY,    OK,      _, _, _, OK,      OK),
        "change/sibling":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING),
        "change/foreign":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, MISSING, OK,      _, _, _, OK,      OK),
        "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
    # Policies: shipped and own ones, read-only; a change is proposed (officers only) and decided apart.
    "access.policy": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      OK),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      OK),
        "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      OK),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
    "access.policychange": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      OK),
        "add":             (_, DENY,    DENY,    _, _, _, OK,      DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      OK),
        "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      OK),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
    # On-call overrides: taken by those on call (owners here; builders and operators on their page).
    "access.oncalloverride": {
        "changelist":      (_, OK,      OK,      _, _, _, OK,      OK),
        "add":             (_, DENY,    OK,      _, _, _, DENY,    DENY),
        "change/own":      (_, OK,      OK,      _, _, _, OK,      OK),
        "change/sibling":  (_, OK,      MISSING, _, _, _, MISSING, MISSING),
        "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, OK,      OK,      _, _, _, OK,      OK),
        "history/sibling": (_, OK,      MISSING, _, _, _, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
    # Workflows and their changes: members with a control-panel role read them; the platform
    # administrator sees no workflow data; reviews go through the decision page, never edits.
    "workflows.workflow": {
        "changelist":      (_, DENY,    OK,      _, _, _, OK,      OK),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "change/own":      (_, DENY,    OK,      _, _, _, OK,      OK),
        "change/sibling":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING),
        "change/foreign":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, MISSING, OK,      _, _, _, OK,      OK),
        "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
    "workflows.changerequest": {
        "changelist":      (_, DENY,    OK,      _, _, _, OK,      OK),
        "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "change/own":      (_, DENY,    OK,      _, _, _, OK,      OK),
        "change/sibling":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING),
        "change/foreign":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING),
        "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
        "history/own":     (_, MISSING, OK,      _, _, _, OK,      OK),
        "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
        "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    },
}
# Service accounts: workspace owners manage their own workspace's only; nobody deletes one (it is
# disabled) and nobody edits its row (tokens, disabling and reactivation are their own pages).
MATRIX["workflows.serviceaccount"] = {
    "changelist":      (_, DENY,    OK,      _, _, _, DENY,    DENY),
    "add":             (_, DENY,    OK,      _, _, _, DENY,    DENY),
    "change/own":      (_, DENY,    OK,      _, _, _, DENY,    DENY),
    "change/sibling":  (_, DENY,    MISSING, _, _, _, DENY,    DENY),
    "change/foreign":  (_, DENY,    MISSING, _, _, _, DENY,    DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "history/own":     (_, MISSING, OK,      _, _, _, MISSING, MISSING),
    "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
}
# Connector types: officers and platform administrators register and vet them (the change page is
# the vetting form); allow-list rules: platform administrators only, added or removed, never edited;
# integrations: owners connect and configure their workspace's, officers and auditors read them.
MATRIX["workflows.connectortype"] = {
    "changelist":      (_, OK,      DENY,    _, _, _, OK,      DENY),
    "add":             (_, OK,      DENY,    _, _, _, OK,      DENY),
    "change/own":      (_, OK,      DENY,    _, _, _, OK,      DENY),
    "change/foreign":  (_, MISSING, DENY,    _, _, _, MISSING, DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "history/own":     (_, OK,      MISSING, _, _, _, OK,      MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
}
MATRIX["workflows.networkallowrule"] = {
    "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
    "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY),
    "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
    "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY),
    "delete/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
    "delete/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY),
    "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
}
MATRIX["workflows.integration"] = {
    "changelist":      (_, DENY,    OK,      _, _, _, OK,      OK),
    "add":             (_, DENY,    OK,      _, _, _, DENY,    DENY),
    "change/own":      (_, DENY,    OK,      _, _, _, OK,      OK),
    "change/sibling":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING),
    "change/foreign":  (_, DENY,    MISSING, _, _, _, MISSING, MISSING),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "history/own":     (_, MISSING, OK,      _, _, _, OK,      OK),
    "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
}
# Keys: read-only status pages for key viewers of the workspace (platform administrators see every
# workspace of their organisation); rotation and BYOK are their own pages.
_KEY_STATUS_ROWS = {
    "changelist":      (_, OK,      OK,      _, _, _, OK,      OK),
    "add":             (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "change/own":      (_, OK,      OK,      _, _, _, OK,      OK),
    "change/sibling":  (_, OK,      MISSING, _, _, _, MISSING, MISSING),
    "change/foreign":  (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "history/own":     (_, OK,      OK,      _, _, _, OK,      OK),
    "history/sibling": (_, OK,      MISSING, _, _, _, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
}
for _label in ("crypto.keyencryptionkey", "crypto.datakey", "crypto.rotationjob"):
    MATRIX[_label] = _KEY_STATUS_ROWS
# Credentials (in the secrets store): workspace owners only, never deleted (versions are revoked).
MATRIX["workflows.credential"] = {
    "changelist":      (_, DENY,    OK,      _, _, _, DENY,    DENY),
    "add":             (_, DENY,    OK,      _, _, _, DENY,    DENY),
    "change/own":      (_, DENY,    OK,      _, _, _, DENY,    DENY),
    "change/sibling":  (_, DENY,    MISSING, _, _, _, DENY,    DENY),
    "change/foreign":  (_, DENY,    MISSING, _, _, _, DENY,    DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "history/own":     (_, MISSING, OK,      _, _, _, MISSING, MISSING),
    "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
}
# The incident runbook: owners and compliance officers start and follow it; it is never edited.
MATRIX["workflows.credentialrunbook"] = {
    "changelist":      (_, DENY,    OK,      _, _, _, OK,      DENY),
    "add":             (_, DENY,    OK,      _, _, _, OK,      DENY),
    "change/own":      (_, DENY,    OK,      _, _, _, OK,      DENY),
    "change/sibling":  (_, DENY,    MISSING, _, _, _, MISSING, DENY),
    "change/foreign":  (_, DENY,    MISSING, _, _, _, MISSING, DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "history/own":     (_, MISSING, OK,      _, _, _, OK,      MISSING),
    "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
}
# Evidence orders: auditors order packages of their workspaces and see only their own orders;
# nobody edits or deletes one (it expires).
MATRIX["audit.evidenceorder"] = {
    "changelist":      (_, DENY,    DENY,    _, _, _, DENY,    OK),
    "add":             (_, DENY,    DENY,    _, _, _, DENY,    OK),
    "change/own":      (_, DENY,    DENY,    _, _, _, DENY,    OK),
    "change/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    MISSING),
    "change/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    MISSING),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/sibling":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "history/own":     (_, MISSING, MISSING, _, _, _, MISSING, OK),
    "history/sibling": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
}
# Organisation configuration (platform administrators of their own organisation only, through
# organization.manage): SCIM tokens are created and revoked, never edited or deleted; SCIM groups
# are read-only, written by the identity provider; the conditional-access policy is switched off,
# never deleted.
_ORG_CONFIG_ROWS = {
    "changelist":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
    "add":             (_, OK,      DENY,    _, _, _, DENY,    DENY),
    "change/own":      (_, OK,      DENY,    _, _, _, DENY,    DENY),
    "change/foreign":  (_, MISSING, DENY,    _, _, _, DENY,    DENY),
    "delete/own":      (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "delete/foreign":  (_, DENY,    DENY,    _, _, _, DENY,    DENY),
    "history/own":     (_, OK,      MISSING, _, _, _, MISSING, MISSING),
    "history/foreign": (_, MISSING, MISSING, _, _, _, MISSING, MISSING),
}
MATRIX["accounts.scimtoken"] = _ORG_CONFIG_ROWS
MATRIX["accounts.scimgroup"] = {**_ORG_CONFIG_ROWS, "add": (_, DENY, DENY, _, _, _, DENY, DENY)}
MATRIX["accounts.conditionalaccesspolicy"] = _ORG_CONFIG_ROWS
# fmt: on


def _world_objects(world):
    from governance.tenancy.models import Role

    return {
        "accounts.user": {
            "own": world.users["viewer"],
            "sibling": world.sibling_membership.user,
            "foreign": world.foreign_user,
        },
        "tenancy.organization": {"own": world.org, "foreign": world.foreign_org},
        "tenancy.workspace": {"own": world.ws, "sibling": world.sibling, "foreign": world.foreign},
        "tenancy.membership": {
            "own": world.memberships["viewer"],
            "sibling": world.sibling_membership,
            "foreign": world.foreign_membership,
        },
        "tenancy.role": {"own": Role.objects.get(pk="viewer")},
        "audit.auditevent": world.events,
        "access.policy": world.policies,
        "access.policychange": world.policy_changes,
        "access.oncalloverride": world.overrides,
        "workflows.workflow": world.workflows,
        "workflows.changerequest": world.changes,
    }


# Each source makes the objects of some models (in the world's database); a cell makes only those
# of its own model. Which source makes which model is learnt on first use.
_SOURCES = (
    _world_objects,
    lambda world: {"workflows.serviceaccount": service_accounts_of(world)},
    network_boundary_of,
    conditional_access_of,
    secrets_objects_of,
    evidence_orders_of,
    scim_objects_of,
    sso_objects_of,
)
_SOURCE_OF: dict[str, int] = {}


def _objects_of(world, label: str) -> dict:
    if label in _SOURCE_OF:
        return _SOURCES[_SOURCE_OF[label]](world).get(label, {})
    for index, source in enumerate(_SOURCES):
        made = source(world)
        _SOURCE_OF.update(dict.fromkeys(made, index))
        if label in made:
            return made[label]
    return {}


def targets(world, model, view: str, scope: str | None) -> str | None:
    """The URL of ``view`` for ``model`` (on the ``scope`` object for object views)."""
    meta = model._meta
    name = f"admin:{meta.app_label}_{meta.model_name}_{view}"
    if scope is None:
        return reverse(name)
    obj = _objects_of(world, meta.label_lower).get(scope)
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
        return f"302 to {location}"
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
            for scope in ("own", "sibling", "foreign"):
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


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("anonymous", LOGIN),
        *(
            (
                code,
                OK
                if code in {"platform_admin", "workspace_owner", "compliance_officer", "auditor"}
                else LOGIN,
            )
            for code in ROLE_ORDER
        ),
    ],
)
def test_control_panel_index(shared_world, client, column, expected):
    """Only roles granting admin.access open the control panel; the others are sent to log in."""
    world = shared_world
    if column != "anonymous":
        client.force_login(world.users[column])
    assert classify(client.get(reverse("admin:index"))) == expected
