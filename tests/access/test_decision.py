"""The decision point: roles, grants and deny rules, and the visible-to queries that must agree."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from governance.access.actions import ACTIONS
from governance.access.decision import AccessDenied, decide, forget, require
from governance.access.queries import restrict
from governance.access.services import object_grant_assign, object_grant_revoke
from governance.core.context import ActorContext, bind_context
from governance.tenancy.models import Membership, Role, Workspace
from tests.conftest import ROLE_ORDER, build_world, member
from tests.factories import UserFactory

ALL = set(ROLE_ORDER)
WORKSPACE_ROLES = ALL - {"platform_admin"}
# Which roles may perform each action on an object of their own workspace. Written from the
# security guide's role descriptions, independently of the migration that fills the table.
EXPECTED_ON_OWN_WORKSPACE = {
    "admin.access": {"platform_admin", "workspace_owner", "compliance_officer", "auditor"},
    "dashboard.view": ALL,
    "role.view": {"platform_admin", "workspace_owner", "compliance_officer", "auditor"},
    "workspace.view": ALL,
    "workspace.manage": {"platform_admin", "workspace_owner"},
    "membership.view": {"platform_admin", "workspace_owner", "compliance_officer", "auditor"},
    "membership.manage": {"platform_admin", "workspace_owner"},
    "grant.manage": {"workspace_owner"},
    # The platform administrator sees no workflow or execution data without a membership.
    "workflow.view": WORKSPACE_ROLES,
    "workflow.edit": {"workspace_owner", "workflow_builder"},
    "workflow.approve": {"compliance_officer"},
    "workflow.activate": {"workspace_owner", "compliance_officer"},
    "workflow.stop": {"workspace_owner", "compliance_officer"},
    "execution.view": WORKSPACE_ROLES - {"auditor"},
    "execution.trigger": {"workspace_owner", "workflow_operator"},
    # The roles a human_approval or ai_prompt step may name to decide; never the builder who wrote
    # the step, nor read-only roles.
    "human_task.decide": {"workspace_owner", "compliance_officer", "workflow_operator"},
    # The incident stop ("quarantine ... halt executions immediately"): officers, owners and the
    # platform administrator (who halts without seeing any execution data).
    "execution.halt": {"platform_admin", "workspace_owner", "compliance_officer"},
    "organization.halt": {"platform_admin"},
    "integration.manage": {"workspace_owner"},
    # A workflow's steps act as the integration's service account: no person holds these.
    "integration.read": set(),
    "integration.write": set(),
    "credential.manage": {"workspace_owner"},
    "service_account.manage": {"workspace_owner"},
    "audit.view": {"workspace_owner", "compliance_officer", "auditor"},
    "evidence.order": {"auditor"},
    # The organisation's own events answer to the organisation auditor alone (its own tests:
    # tests/access/test_organization_auditor.py); no role of this table holds them.
    "audit.view_organization": set(),
    "evidence.order_organization": set(),
    "retention.view": {"compliance_officer", "auditor"},
    "retention.manage": {"compliance_officer"},
    "retention.view_organization": {"platform_admin"},
    "retention.manage_organization": {"platform_admin"},
    # Organisation-scoped actions count only organisation-wide roles.
    "organization.view": {"platform_admin"},
    "organization.manage": {"platform_admin"},
    "user.view": {"platform_admin"},
    "user.manage": {"platform_admin"},
    "workspace.create": {"platform_admin"},
    "policy.view": {"platform_admin", "workspace_owner", "compliance_officer", "auditor"},
    "policy.manage": {"compliance_officer"},
    "oncall.activate": {"workspace_owner", "workflow_builder", "workflow_operator"},
    "service_account.reactivate": {"workspace_owner"},
    "credential.rotate_all": {"workspace_owner", "compliance_officer"},
    "connector.vet": {"platform_admin", "compliance_officer"},
    "network.allowlist": {"platform_admin"},
    "key.view": {"platform_admin", "workspace_owner", "compliance_officer", "auditor"},
    "key.manage": {"workspace_owner"},
    # The AI register is the organisation's: every role reads it, officers keep it (two of them).
    "ai_register.view": ALL,
    "ai_register.manage": {"compliance_officer"},
}


def test_every_action_has_an_expectation():
    """GIVEN the action registry THEN this table states who may do each action (no silent additions)."""
    assert set(EXPECTED_ON_OWN_WORKSPACE) == set(ACTIONS)


def test_every_role_permission_names_a_known_action(db):
    """The role table (data) names only actions the code knows; an unknown one would be dead weight."""
    from governance.tenancy.models import RolePermission

    assert set(RolePermission.objects.values_list("action", flat=True)) <= set(ACTIONS)
    assert set(Role.objects.values_list("code", flat=True)) == ALL | {"organization_auditor"}


@pytest.mark.parametrize("action", sorted(EXPECTED_ON_OWN_WORKSPACE))
def test_roles_on_own_workspace(world, action):
    """Each role gets exactly the actions the guide gives it, on its own workspace."""
    org_scoped = ACTIONS[action].scope == "organization"
    target = world.org if org_scoped else world.ws
    allowed = {code for code in ROLE_ORDER if decide(world.users[code], action, target).allowed}
    assert allowed == EXPECTED_ON_OWN_WORKSPACE[action]


@pytest.mark.parametrize("action", sorted(EXPECTED_ON_OWN_WORKSPACE))
def test_nobody_reaches_another_organisation(world, action):
    """No role of organisation A may do anything on organisation B's workspace."""
    for code in ROLE_ORDER:
        decision = decide(world.users[code], action, world.foreign)
        assert not decision.allowed
        assert "another organisation" in decision.message


def test_workspace_roles_stop_at_the_workspace_but_organisation_roles_do_not(world):
    """A workspace owner cannot manage the sibling workspace; the platform administrator can."""
    assert not decide(world.users["workspace_owner"], "membership.manage", world.sibling).allowed
    assert decide(world.users["platform_admin"], "membership.manage", world.sibling).allowed
    assert "not a member" in decide(world.users["viewer"], "workspace.view", world.sibling).message


def test_unknown_action_is_denied(world):
    decision = decide(world.users["workspace_owner"], "workspace.destroy_everything", world.ws)
    assert not decision.allowed
    assert "unknown" in decision.message


def test_anonymous_and_inactive_are_denied(world):
    from django.contrib.auth.models import AnonymousUser

    assert not decide(AnonymousUser(), "workspace.view", world.ws).allowed
    assert not decide(None, "workspace.view", world.ws).allowed
    owner = world.users["workspace_owner"]
    owner.is_active = False
    assert not decide(owner, "workspace.view", world.ws).allowed
    assert "deactivated" in decide(owner, "workspace.view", world.ws).message


def test_no_superuser_can_exist(db):
    """The database refuses a superuser row; the flag could never short-cut a decision."""
    user = UserFactory()
    user.is_superuser = True
    with pytest.raises(IntegrityError), transaction.atomic():
        user.save()


def test_has_perm_agrees_with_the_decision_point(world):
    """``user.has_perm`` (Django's API) gives the decision point's answers, object by object."""
    owner = world.users["workspace_owner"]
    assert owner.has_perm("tenancy.change_workspace", world.ws)
    assert not owner.has_perm("tenancy.change_workspace", world.sibling)
    assert not owner.has_perm("tenancy.change_workspace", world.foreign)
    assert not owner.has_perm("tenancy.delete_workspace", world.ws)  # no action: denied
    assert not owner.has_perm("nonsense")
    assert not world.users["viewer"].has_perm("tenancy.change_membership", world.memberships["viewer"])
    assert world.users["platform_admin"].has_perm("accounts.change_user", world.users["viewer"])
    assert not world.users["platform_admin"].has_perm("accounts.change_user", world.foreign_user)


def test_object_grant_allows_that_object_only_and_is_audited(world):
    """A guardian grant lets a user see one more workspace; revoking it takes it away again."""
    viewer = world.users["viewer"]
    other_ws = Workspace.objects.create(organization=world.org, name="Side", slug="side", data_region="EU")
    member(UserFactory(organization=world.org), "workspace_owner", other_ws)
    granter = UserFactory(organization=world.org)
    member(granter, "workspace_owner", other_ws)
    assert not decide(viewer, "workspace.view", other_ws).allowed

    object_grant_assign(actor=granter, user=viewer, obj=other_ws, verb="view")
    assert decide(viewer, "workspace.view", other_ws).allowed
    assert "grant on this object" in decide(viewer, "workspace.view", other_ws).message
    assert not decide(viewer, "workspace.manage", other_ws).allowed
    assert list(restrict(Workspace.objects.filter(pk=other_ws.pk), viewer, "workspace.view")) == [other_ws]
    assert AuditEvent.objects.filter(action="grant.assigned", workspace=other_ws).count() == 1

    object_grant_revoke(actor=granter, user=viewer, obj=other_ws, verb="view")
    forget(viewer)
    assert not decide(viewer, "workspace.view", other_ws).allowed
    assert AuditEvent.objects.filter(action="grant.revoked", workspace=other_ws).count() == 1


def test_grant_across_organisations_is_refused(world):
    with pytest.raises(Exception, match="another organisation"):
        object_grant_assign(
            actor=world.users["workspace_owner"], user=world.foreign_user, obj=world.ws, verb="view"
        )


def test_require_raises_with_reasons(world):
    with pytest.raises(AccessDenied) as raised:
        require(world.users["viewer"], "membership.manage", world.ws)
    assert raised.value.decision.reasons
    assert "workspace members" in str(raised.value)


def _objects(world):
    return [world.ws, world.sibling, world.foreign, *Membership.objects.all(), *AuditEvent.objects.all()]


def test_restrict_agrees_with_decide_everywhere(world, django_assert_max_num_queries):
    """For every user, action and object of the world: in the visible-to queryset iff decide allows;
    within a request whose memberships the decision point has loaded, each list is one query."""
    users = [*world.users.values(), world.sibling_membership.user, world.foreign_user]
    objects = _objects(world)
    for user in users:
        with bind_context(ActorContext(actor=user)):
            decide(user, "workspace.view")  # the request's first decision loads the memberships
            for action in ACTIONS:
                for model in (Workspace, Membership, AuditEvent):
                    with django_assert_max_num_queries(1):
                        visible = set(
                            restrict(model.objects.all(), user, action).values_list("pk", flat=True)
                        )
                    for obj in (o for o in objects if isinstance(o, model)):
                        assert (obj.pk in visible) == decide(user, action, obj).allowed, (user, action, obj)


def test_restrict_outside_a_request_reads_the_memberships_then_the_list(world, django_assert_num_queries):
    """GIVEN no request context (a task or a shell) WHEN a list is restricted THEN the actor's roles
    are read first (one query) and the list is the second: nothing is remembered between calls."""
    user = world.users["compliance_officer"]
    for _ in range(2):
        with django_assert_num_queries(2):
            assert list(restrict(Membership.objects.all(), user, "membership.view"))


ROLE_CHOICES = st.sampled_from(ROLE_ORDER)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    roles_held=st.lists(st.tuples(ROLE_CHOICES, st.sampled_from(["ws", "sibling", "org"])), max_size=4),
    action=st.sampled_from(sorted(ACTIONS)),
)
def test_property_restrict_matches_decide_and_foreign_is_always_denied(db, roles_held, action):
    """Whatever roles a user holds in organisation A, B stays closed and the two answers agree."""
    with transaction.atomic():
        world = build_world()
        user = UserFactory(organization=world.org)
        for code, where in roles_held:
            organization_wide = code == "platform_admin"
            workspace = None if organization_wide else {"ws": world.ws, "sibling": world.sibling}.get(where)
            if not organization_wide and workspace is None:
                continue
            exists = Membership.objects.filter(user=user, workspace=workspace)
            if organization_wide:
                exists = exists.filter(role_id=code)
            if not exists.exists():
                member(user, code, workspace, organization=world.org)
        forget(user)
        for obj in _objects(world):
            decision = decide(user, action, obj)
            visible = restrict(type(obj).objects.filter(pk=obj.pk), user, action).exists()
            assert visible == decision.allowed
            if getattr(obj, "organization_id", None) == world.foreign_org.pk or obj == world.foreign:
                assert not decision.allowed
        transaction.set_rollback(True)
