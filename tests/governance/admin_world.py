"""The objects of every control-panel model in the test world, per scope (own, sibling, foreign),
for the admin matrix and the tenant-clean checks of filters and choices. Records of an
organisation itself (no workspace) have the scopes ``org`` (Acme's) and ``foreign_org`` (Globex's)."""

from __future__ import annotations

from tests.accounts.conditional_world import conditional_access_of
from tests.accounts.scim_world import scim_objects_of
from tests.accounts.sso_admin_world import sso_objects_of
from tests.audit.evidence_world import evidence_orders_of
from tests.audit.ledger_world import ledger_events_of
from tests.audit.siem_world import siem_objects_of
from tests.workflows.ai_register_world import ai_register_of
from tests.workflows.execution_world import executions_of
from tests.workflows.halts_world import halts_of
from tests.workflows.network_boundary_world import network_boundary_of
from tests.workflows.secrets_world import secrets_objects_of
from tests.workflows.service_account_world import service_accounts_of


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
        "access.policy": world.policies,
        "access.policychange": world.policy_changes,
        "access.oncalloverride": world.overrides,
        "workflows.workflow": world.workflows,
        "workflows.changerequest": world.changes,
    }


# Each source makes the objects of some models (in the world's database); a cell makes only those
# of its own model. Which source makes which model is learnt on first use.
SOURCES = (
    _world_objects,
    lambda world: {"workflows.serviceaccount": service_accounts_of(world)},
    lambda world: {"workflows.execution": executions_of(world)},
    network_boundary_of,
    conditional_access_of,
    secrets_objects_of,
    evidence_orders_of,
    ledger_events_of,
    scim_objects_of,
    sso_objects_of,
    halts_of,
    siem_objects_of,
    ai_register_of,
)
SOURCE_OF: dict[str, int] = {}


def objects_of(world, label: str) -> dict:
    if label in SOURCE_OF:
        return SOURCES[SOURCE_OF[label]](world).get(label, {})
    for index, source in enumerate(SOURCES):
        made = source(world)
        SOURCE_OF.update(dict.fromkeys(made, index))
        if label in made:
            return made[label]
    return {}


def seed_everything(world) -> None:
    """Make every source's objects (in both organisations), as a page listing them all would see."""
    for source in SOURCES:
        source(world)
