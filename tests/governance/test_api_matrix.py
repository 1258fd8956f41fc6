"""Authorization matrix of the API: every endpoint × every role × own/sibling/foreign workspace.

The table is the specification; ``test_matrix_covers_every_api_endpoint`` fails when a route
is added without rows. Statuses are HTTP codes; 404 means "not visible to you" (exactly as if it
did not exist), 403 "you may see it but not do this", 401 "sign in first".
"""

from __future__ import annotations

import pytest
from django.urls import get_resolver, reverse
from rest_framework.test import APIClient

from governance.tenancy.models import Membership
from tests.conftest import MATRIX_ROLES, ROLE_ORDER

COLUMNS = ("anonymous", *MATRIX_ROLES)
# The credentials endpoints read the secrets store.
pytestmark = pytest.mark.django_db(databases=["default", "secrets"])


def _target(world, scope):
    return {
        "own": (world.ws, world.memberships["viewer"]),
        "sibling": (world.sibling, world.sibling_membership),
        "foreign": (world.foreign, world.foreign_membership),
    }[scope]


def _request(client, world, endpoint: str, scope: str | None):
    if endpoint.startswith("api-service-account"):
        return _service_account_request(client, world, endpoint, scope)
    if endpoint.startswith("api-credential"):
        return _credential_request(client, world, endpoint, scope)
    if endpoint.startswith(("api-execution", "api-workflow-execution")):
        return _execution_request(client, world, endpoint, scope)
    if endpoint.startswith(("api-workflow", "api-change", "api-integration")):
        return _workflow_request(client, world, endpoint, scope)
    if endpoint == "workspace-list":
        return client.get(reverse("workspace-list"))
    if endpoint == "membership-list":
        return client.get(reverse("membership-list"))
    if endpoint == "api-schema":
        return client.get(reverse("api-schema"))
    if endpoint == "api-docs":
        return client.get(reverse("api-docs"))
    workspace, membership = _target(world, scope)
    if endpoint == "workspace-detail":
        return client.get(reverse("workspace-detail", args=[workspace.pk]))
    if endpoint == "membership-create":
        newcomer = world.newcomers[workspace.organization_id]
        return client.post(
            reverse("membership-list"),
            {"user": newcomer.pk, "workspace": workspace.pk, "role": "viewer"},
            format="json",
        )
    url = reverse("membership-detail", args=[membership.pk])
    if endpoint == "membership-detail":
        return client.get(url)
    if endpoint == "membership-update":
        return client.patch(url, {"role": "workflow_operator"}, format="json")
    if endpoint == "membership-delete":
        return client.delete(url)
    raise AssertionError(endpoint)


def _draft(world, scope):
    """A fresh draft change on the scope's workflow, by the workflow's author."""
    from workflows.changes.definition import diff_definitions
    from workflows.changes.models import ChangeRequest, WorkflowVersion

    workflow = world.workflows[scope]
    latest = workflow.versions.order_by("-number").first()
    version = WorkflowVersion.objects.create(workflow=workflow, number=latest.number + 1,
                                             definition=latest.definition, content_hash=latest.content_hash,
                                             created_by=workflow.owner)  # fmt: skip
    return ChangeRequest.objects.create(
        workflow=workflow,
        version=version,
        author=workflow.owner,
        summary="draft",
        diff=diff_definitions(latest.definition, latest.definition),
    )


def _integration_request(world, scope):
    """A pending request in the scope's workspace; in ours the owner asks and the auditor is the manager."""
    from workflows.integrations.models import IntegrationRequest

    owner = world.users["workspace_owner"]
    owner.manager = world.users["auditor"]
    owner.save(update_fields=["manager"])
    requester = {"own": owner, "sibling": world.sibling_membership.user, "foreign": world.foreign_user}[scope]
    workspace = {"own": world.ws, "sibling": world.sibling, "foreign": world.foreign}[scope]
    return IntegrationRequest.objects.create(
        workspace=workspace,
        name="HR",
        slug="hris",
        kind="hris",
        sensitivity="hr",
        reason="payroll",
        requested_by=requester,
    )


def _workflow_request(client, world, endpoint: str, scope: str | None):
    from tests.conftest import SIMPLE_DEFINITION

    if endpoint == "api-integration-request-list":
        return client.get(reverse("api-integration-request-list"))
    if endpoint == "api-integration-request-create":
        workspace = {"own": world.ws, "sibling": world.sibling, "foreign": world.foreign}[scope]
        return client.post(reverse("api-integration-request-list"), {
            "workspace": workspace.pk, "name": "CRM", "slug": "crm", "kind": "crm", "sensitivity": "none",
            "reason": "tickets"}, format="json")  # fmt: skip
    if endpoint == "api-integration-request-detail":
        return client.get(
            reverse("api-integration-request-detail", args=[_integration_request(world, scope).pk])
        )
    if endpoint == "api-integration-request-decide":
        item = _integration_request(world, scope)
        return client.post(
            reverse("api-integration-request-decide", args=[item.pk]),
            {"approve": True, "comment": "ok"},
            format="json",
        )

    if endpoint == "api-workflow-list":
        return client.get(reverse("api-workflow-list"))
    if endpoint == "api-change-list":
        return client.get(reverse("api-change-list"))
    workspace = {"own": world.ws, "sibling": world.sibling, "foreign": world.foreign}[scope]
    workflow, change = world.workflows[scope], world.changes[scope]
    if endpoint == "api-workflow-create":
        return client.post(
            reverse("api-workflow-list"),
            {
                "workspace": workspace.pk,
                "name": "New",
                "slug": "new-flow",
                "environment": "staging",
                "data_region": workspace.data_region,
                "definition": SIMPLE_DEFINITION,
                "summary": "new",
            },
            format="json",
        )
    if endpoint == "api-workflow-detail":
        return client.get(reverse("api-workflow-detail", args=[workflow.pk]))
    if endpoint == "api-workflow-versions":
        latest = workflow.versions.order_by("-number").first()
        return client.post(
            reverse("api-workflow-versions", args=[workflow.pk]),
            {"definition": SIMPLE_DEFINITION, "base_version": latest.pk, "summary": "edit"},
            format="json",
        )
    if endpoint == "api-change-detail":
        return client.get(reverse("api-change-detail", args=[change.pk]))
    if endpoint == "api-change-apply":
        return client.post(reverse("api-change-apply", args=[change.pk]))
    if endpoint in ("api-change-submit", "api-change-withdraw"):
        return client.post(reverse(endpoint, args=[_draft(world, scope).pk]))
    if endpoint == "api-change-decide":
        return client.post(
            reverse("api-change-decide", args=[change.pk]),
            {"tier": "compliance", "approve": True, "comment": "ok"},
            format="json",
        )
    raise AssertionError(endpoint)


def _service_account_request(client, world, endpoint: str, scope: str | None):
    from tests.workflows.service_account_world import free_integration, service_accounts_of

    if endpoint == "api-service-account-list":
        return client.get(reverse("api-service-account-list"))
    if endpoint == "api-service-account-create":
        return client.post(reverse("api-service-account-list"), {
            "integration": free_integration(world, scope).pk, "name": "ERP sync",
            "scopes": ["workflows:read"]}, format="json")  # fmt: skip
    account = service_accounts_of(world)[scope]
    if endpoint == "api-service-account-detail":
        return client.get(reverse("api-service-account-detail", args=[account.pk]))
    if endpoint == "api-service-account-rotate":
        return client.post(reverse("api-service-account-rotate", args=[account.pk]))
    raise AssertionError(endpoint)


def _credential_request(client, world, endpoint: str, scope: str | None):
    from tests.workflows.secrets_world import secrets_objects_of

    if endpoint == "api-credential-list":
        return client.get(reverse("api-credential-list"))
    credential = secrets_objects_of(world)["workflows.credential"][scope]
    if endpoint == "api-credential-create":
        return client.post(reverse("api-credential-list"), {
            "integration": credential.integration_id, "name": "second", "value": "a-new-secret-value"},
            format="json")  # fmt: skip
    if endpoint == "api-credential-detail":
        return client.get(reverse("api-credential-detail", args=[credential.pk]))
    if endpoint == "api-credential-versions":
        return client.post(reverse("api-credential-versions", args=[credential.pk]),
                           {"value": "a-rotated-secret-value"}, format="json")  # fmt: skip
    raise AssertionError(endpoint)


def _execution_request(client, world, endpoint: str, scope: str | None):
    from tests.workflows.execution_world import executions_of

    if endpoint == "api-execution-list":
        return client.get(reverse("api-execution-list"))
    if endpoint == "api-workflow-execution-create":
        return client.post(reverse("api-workflow-execution-list", args=[world.workflows[scope].pk]),
                           {"input": {"amount": 1}}, format="json")  # fmt: skip
    execution = executions_of(world)[scope]
    if endpoint == "api-execution-detail":
        return client.get(reverse("api-execution-detail", args=[execution.pk]))
    if endpoint == "api-execution-cancel":
        return client.post(reverse("api-execution-cancel", args=[execution.pk]), {"reason": "wrong input"},
                           format="json")  # fmt: skip
    if endpoint in ("api-execution-retry", "api-execution-resume"):
        return client.post(reverse(endpoint, args=[execution.pk]), {"reason": "go on"}, format="json")
    raise AssertionError(endpoint)


# fmt: off
# The organisation auditor (org.aud, an organisation-wide role: admin.access, dashboard.view,
# role.view, user.view and the organisation's own audit actions, none of which the API serves)
# reaches no workspace: refused (403) wherever a role is asked for up front; where a list asks only
# for dashboard.view or for nothing, the list is empty and every row answers 404.
# columns:                 anon p.admin owner builder operator viewer officer auditor org.aud
MATRIX = {
    "api-schema":                (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "api-docs":                  (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "workspace-list":            (401, 200, 200, 200, 200, 200, 200, 200, 403),
    "workspace-detail/own":      (401, 200, 200, 200, 200, 200, 200, 200, 403),
    "workspace-detail/sibling":  (401, 200, 404, 404, 404, 404, 404, 404, 403),
    "workspace-detail/foreign":  (401, 404, 404, 404, 404, 404, 404, 404, 403),
    "membership-list":           (401, 200, 200, 403, 403, 403, 200, 200, 403),
    "membership-detail/own":     (401, 200, 200, 403, 403, 403, 200, 200, 403),
    "membership-detail/sibling": (401, 200, 404, 403, 403, 403, 404, 404, 403),
    "membership-detail/foreign": (401, 404, 404, 403, 403, 403, 404, 404, 403),
    "membership-create/own":     (401, 201, 201, 403, 403, 403, 403, 403, 403),
    "membership-create/sibling": (401, 201, 400, 403, 403, 403, 403, 403, 403),
    "membership-create/foreign": (401, 400, 400, 403, 403, 403, 403, 403, 403),
    "membership-update/own":     (401, 200, 200, 403, 403, 403, 403, 403, 403),
    "membership-update/sibling": (401, 200, 404, 403, 403, 403, 403, 403, 403),
    "membership-update/foreign": (401, 404, 404, 403, 403, 403, 403, 403, 403),
    "membership-delete/own":     (401, 204, 204, 403, 403, 403, 403, 403, 403),
    "membership-delete/sibling": (401, 204, 404, 403, 403, 403, 403, 403, 403),
    "membership-delete/foreign": (401, 404, 404, 403, 403, 403, 403, 403, 403),
    # Workflows: the platform administrator sees none (changes: an empty list, every one 404);
    # builders and owners create and edit; the
    # service refuses (403, with the reason) whoever the change's rules leave out although the
    # route lets them in (the author deciding, an operator reviewing, another than the author
    # submitting); 400 is for input only.
    "api-workflow-list":             (401, 403, 200, 200, 200, 200, 200, 200, 403),
    "api-change-list":               (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "api-workflow-create/own":       (401, 403, 201, 201, 403, 403, 403, 403, 403),
    "api-workflow-create/sibling":   (401, 403, 400, 400, 403, 403, 403, 403, 403),
    "api-workflow-create/foreign":   (401, 403, 400, 400, 403, 403, 403, 403, 403),
    "api-workflow-detail/own":       (401, 403, 200, 200, 200, 200, 200, 200, 403),
    "api-workflow-detail/sibling":   (401, 403, 404, 404, 404, 404, 404, 404, 403),
    "api-workflow-detail/foreign":   (401, 403, 404, 404, 404, 404, 404, 404, 403),
    "api-workflow-versions/own":     (401, 403, 201, 201, 403, 403, 403, 403, 403),
    "api-workflow-versions/sibling": (401, 403, 404, 404, 403, 403, 403, 403, 403),
    "api-workflow-versions/foreign": (401, 403, 404, 404, 403, 403, 403, 403, 403),
    "api-change-detail/own":         (401, 404, 200, 200, 200, 200, 200, 200, 404),
    "api-change-detail/sibling":     (401, 404, 404, 404, 404, 404, 404, 404, 404),
    "api-change-detail/foreign":     (401, 404, 404, 404, 404, 404, 404, 404, 404),
    "api-change-submit/own":         (401, 403, 403, 200, 403, 403, 403, 403, 403),
    "api-change-submit/sibling":     (401, 403, 404, 404, 403, 403, 403, 403, 403),
    "api-change-submit/foreign":     (401, 403, 404, 404, 403, 403, 403, 403, 403),
    "api-change-withdraw/own":       (401, 403, 403, 200, 403, 403, 403, 403, 403),
    "api-change-withdraw/sibling":   (401, 403, 404, 404, 403, 403, 403, 403, 403),
    "api-change-withdraw/foreign":   (401, 403, 404, 404, 403, 403, 403, 403, 403),
    "api-change-decide/own":         (401, 404, 403, 403, 403, 403, 200, 403, 404),
    "api-change-decide/sibling":     (401, 404, 404, 404, 404, 404, 404, 404, 404),
    "api-change-decide/foreign":     (401, 404, 404, 404, 404, 404, 404, 404, 404),
    # Apply now: only roles that activate (owners, officers) get past the role check; the change
    # here is still in review, so the service refuses it (400) in their own workspace.
    "api-change-apply/own":          (401, 403, 400, 403, 403, 403, 400, 403, 403),
    "api-change-apply/sibling":      (401, 403, 404, 403, 403, 403, 404, 403, 403),
    "api-change-apply/foreign":      (401, 403, 404, 403, 403, 403, 404, 403, 403),
    # Integration requests: owners ask (here the owner's manager is the auditor, who alone decides);
    # nobody else sees a request, whatever their role.
    "api-integration-request-list":           (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "api-integration-request-create/own":     (401, 403, 201, 403, 403, 403, 403, 403, 403),
    "api-integration-request-create/sibling": (401, 403, 400, 403, 403, 403, 403, 403, 403),
    "api-integration-request-create/foreign": (401, 403, 400, 403, 403, 403, 403, 403, 403),
    "api-integration-request-detail/own":     (401, 404, 200, 404, 404, 404, 404, 200, 404),
    "api-integration-request-detail/sibling": (401, 404, 404, 404, 404, 404, 404, 404, 404),
    "api-integration-request-detail/foreign": (401, 404, 404, 404, 404, 404, 404, 404, 404),
    "api-integration-request-decide/own":     (401, 404, 403, 404, 404, 404, 404, 200, 404),
    "api-integration-request-decide/sibling": (401, 404, 404, 404, 404, 404, 404, 404, 404),
    "api-integration-request-decide/foreign": (401, 404, 404, 404, 404, 404, 404, 404, 404),
}
# Service accounts: workspace owners only, in their own workspace (another's integration is not a
# valid choice: 400; another's account is not visible: 404).
# columns:                                 anon p.admin owner builder operator viewer officer auditor org.aud
MATRIX.update({
    "api-service-account-list":           (401, 403, 200, 403, 403, 403, 403, 403, 403),
    "api-service-account-create/own":     (401, 403, 201, 403, 403, 403, 403, 403, 403),
    "api-service-account-create/sibling": (401, 403, 400, 403, 403, 403, 403, 403, 403),
    "api-service-account-create/foreign": (401, 403, 400, 403, 403, 403, 403, 403, 403),
    "api-service-account-detail/own":     (401, 403, 200, 403, 403, 403, 403, 403, 403),
    "api-service-account-detail/sibling": (401, 403, 404, 403, 403, 403, 403, 403, 403),
    "api-service-account-detail/foreign": (401, 403, 404, 403, 403, 403, 403, 403, 403),
    "api-service-account-rotate/own":     (401, 403, 201, 403, 403, 403, 403, 403, 403),
    "api-service-account-rotate/sibling": (401, 403, 404, 403, 403, 403, 403, 403, 403),
    "api-service-account-rotate/foreign": (401, 403, 404, 403, 403, 403, 403, 403, 403),
})
# Credentials (values write-only): workspace owners, their own workspace's only. Another
# workspace's integration is not a valid choice (400); another's credential is not visible (404).
# columns:                              anon p.admin owner builder operator viewer officer auditor org.aud
MATRIX.update({
    "api-credential-list":              (401, 403, 200, 403, 403, 403, 403, 403, 403),
    "api-credential-create/own":        (401, 403, 201, 403, 403, 403, 403, 403, 403),
    "api-credential-create/sibling":    (401, 403, 400, 403, 403, 403, 403, 403, 403),
    "api-credential-create/foreign":    (401, 403, 400, 403, 403, 403, 403, 403, 403),
    "api-credential-detail/own":        (401, 403, 200, 403, 403, 403, 403, 403, 403),
    "api-credential-detail/sibling":    (401, 403, 404, 403, 403, 403, 403, 403, 403),
    "api-credential-detail/foreign":    (401, 403, 404, 403, 403, 403, 403, 403, 403),
    "api-credential-versions/own":      (401, 403, 201, 403, 403, 403, 403, 403, 403),
    "api-credential-versions/sibling":  (401, 403, 404, 403, 403, 403, 403, 403, 403),
    "api-credential-versions/foreign":  (401, 403, 404, 403, 403, 403, 403, 403, 403),
})
# Executions: those with execution.view read runs; to the others (the platform administrator, the
# auditor) the list is empty and every run answers 404, as if there were none. Owners and operators start and stop them in their own workspace. Another workspace's run or
# workflow is not visible (404). The world's workflows are drafts: starting one is refused (400).
# columns:                                   anon p.admin owner builder operator viewer officer auditor org.aud
MATRIX.update({
    "api-execution-list":                    (401, 200, 200, 200, 200, 200, 200, 200, 200),
    "api-execution-detail/own":              (401, 404, 200, 200, 200, 200, 200, 404, 404),
    "api-execution-detail/sibling":          (401, 404, 404, 404, 404, 404, 404, 404, 404),
    "api-execution-detail/foreign":          (401, 404, 404, 404, 404, 404, 404, 404, 404),
    "api-execution-cancel/own":              (401, 403, 200, 403, 200, 403, 403, 403, 403),
    "api-execution-cancel/sibling":          (401, 403, 404, 403, 404, 403, 403, 403, 403),
    "api-execution-cancel/foreign":          (401, 403, 404, 403, 404, 403, 403, 403, 403),
    # Retry and resume: the world's runs are queued (neither failed nor halted), so the move is refused (400).
    "api-execution-retry/own":               (401, 403, 400, 403, 400, 403, 403, 403, 403),
    "api-execution-retry/sibling":           (401, 403, 404, 403, 404, 403, 403, 403, 403),
    "api-execution-retry/foreign":           (401, 403, 404, 403, 404, 403, 403, 403, 403),
    "api-execution-resume/own":              (401, 403, 400, 403, 400, 403, 403, 403, 403),
    "api-execution-resume/sibling":          (401, 403, 404, 403, 404, 403, 403, 403, 403),
    "api-execution-resume/foreign":          (401, 403, 404, 403, 404, 403, 403, 403, 403),
    "api-workflow-execution-create/own":     (401, 403, 400, 403, 400, 403, 403, 403, 403),
    "api-workflow-execution-create/sibling": (401, 403, 404, 403, 404, 403, 403, 403, 403),
    "api-workflow-execution-create/foreign": (401, 403, 404, 403, 404, 403, 403, 403, 403),
})
# fmt: on

# Which route and method each row exercises.
ROUTES = {
    "api-schema": ("api-schema", "GET"),
    "api-docs": ("api-docs", "GET"),
    "workspace-list": ("workspace-list", "GET"),
    "workspace-detail": ("workspace-detail", "GET"),
    "membership-list": ("membership-list", "GET"),
    "membership-create": ("membership-list", "POST"),
    "membership-detail": ("membership-detail", "GET"),
    "membership-update": ("membership-detail", "PATCH"),
    "membership-delete": ("membership-detail", "DELETE"),
    "api-workflow-list": ("api-workflow-list", "GET"),
    "api-workflow-create": ("api-workflow-list", "POST"),
    "api-workflow-detail": ("api-workflow-detail", "GET"),
    "api-workflow-versions": ("api-workflow-versions", "POST"),
    "api-change-list": ("api-change-list", "GET"),
    "api-change-detail": ("api-change-detail", "GET"),
    "api-change-submit": ("api-change-submit", "POST"),
    "api-change-withdraw": ("api-change-withdraw", "POST"),
    "api-change-decide": ("api-change-decide", "POST"),
    "api-change-apply": ("api-change-apply", "POST"),
    "api-integration-request-list": ("api-integration-request-list", "GET"),
    "api-integration-request-create": ("api-integration-request-list", "POST"),
    "api-integration-request-detail": ("api-integration-request-detail", "GET"),
    "api-integration-request-decide": ("api-integration-request-decide", "POST"),
}
ROUTES.update(
    {
        "api-service-account-list": ("api-service-account-list", "GET"),
        "api-service-account-create": ("api-service-account-list", "POST"),
        "api-service-account-detail": ("api-service-account-detail", "GET"),
        "api-service-account-rotate": ("api-service-account-rotate", "POST"),
        "api-credential-list": ("api-credential-list", "GET"),
        "api-credential-create": ("api-credential-list", "POST"),
        "api-credential-detail": ("api-credential-detail", "GET"),
        "api-credential-versions": ("api-credential-versions", "POST"),
        "api-execution-list": ("api-execution-list", "GET"),
        "api-execution-detail": ("api-execution-detail", "GET"),
        "api-execution-cancel": ("api-execution-cancel", "POST"),
        "api-execution-retry": ("api-execution-retry", "POST"),
        "api-execution-resume": ("api-execution-resume", "POST"),
        "api-workflow-execution-create": ("api-workflow-execution-list", "POST"),
    }
)


def _api_routes() -> set[tuple[str, str]]:
    """Every (route name, method) the URL map serves under /api/, HEAD and OPTIONS aside."""
    found = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, route)
                continue
            if not route.startswith("api/") or pattern.name is None or "format" in route:
                continue
            callback = pattern.callback
            actions = getattr(callback, "actions", None)
            if actions:
                methods = {method.upper() for method in actions}
            else:
                view_class = callback.view_class
                methods = {m.upper() for m in view_class.http_method_names if hasattr(view_class, m)}
            found.update((pattern.name, method) for method in methods - {"HEAD", "OPTIONS"})

    walk(get_resolver().url_patterns)
    return found


def test_matrix_covers_every_api_endpoint():
    covered = {ROUTES[key.partition("/")[0]] for key in MATRIX}
    assert covered == _api_routes()
    assert all(len(row) == len(COLUMNS) for row in MATRIX.values())


def _cells():
    for key, expected in MATRIX.items():
        endpoint, _, scope = key.partition("/")
        for column, status in zip(COLUMNS, expected, strict=True):
            yield pytest.param(endpoint, scope or None, column, status, id=f"{key}:{column}")


@pytest.mark.parametrize(("endpoint", "scope", "column", "expected"), list(_cells()))
def test_api_matrix(shared_world, endpoint, scope, column, expected):
    world = shared_world
    client = APIClient()
    if column != "anonymous":
        client.force_authenticate(world.users[column])
    from workflows.changes.models import Approval, Workflow, WorkflowVersion

    def counts():
        return (
            Membership.objects.count(),
            Workflow.objects.count(),
            WorkflowVersion.objects.count(),
            Approval.objects.count(),
        )

    before = counts()
    response = _request(client, world, endpoint, scope)
    assert response.status_code == expected, getattr(response, "data", None)
    if expected >= 400 and not endpoint.startswith("api-change-"):
        assert counts() == before  # a refusal writes nothing
    if expected >= 400 and endpoint == "api-change-decide":
        assert Approval.objects.count() == before[3]


@pytest.mark.parametrize("column", ROLE_ORDER)
def test_lists_never_show_another_organisation(shared_world, column):
    """Whatever the role, list endpoints hold no row of organisation B (0 unexpected allows). (The
    organisation auditor may list neither workspaces nor memberships: the matrix's 403.)"""
    world = shared_world
    client = APIClient()
    client.force_authenticate(world.users[column])
    workspaces = client.get(reverse("workspace-list")).json()["results"]
    assert world.foreign.pk not in {row["id"] for row in workspaces}
    assert world.ws.pk in {row["id"] for row in workspaces}
    response = client.get(reverse("membership-list"))
    if response.status_code == 200:
        rows = {row["id"] for row in response.json()["results"]}
        assert world.foreign_membership.pk not in rows
        assert world.memberships["viewer"].pk in rows


def test_openapi_schema_is_valid_and_complete(tmp_path):
    """The published schema validates and drf-spectacular has nothing to warn about."""
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/v1/memberships/" in text
    assert "MembershipCreateInput" in text


# SCIM (/scim/v2/) answers only to SCIM tokens: every role, signed in with a session, gets 401
# (a SCIM error), on every route and method; the SCIM tests cover what a token may do.
SCIM_ROUTES = {
    ("scim-config", "GET"), ("scim-resource-types", "GET"), ("scim-resource-type", "GET"),
    ("scim-schemas", "GET"), ("scim-schema", "GET"),
    ("scim-users", "GET"), ("scim-users", "POST"),
    ("scim-user", "GET"), ("scim-user", "PUT"), ("scim-user", "PATCH"), ("scim-user", "DELETE"),
    ("scim-groups", "GET"), ("scim-groups", "POST"),
    ("scim-group", "GET"), ("scim-group", "PUT"), ("scim-group", "PATCH"), ("scim-group", "DELETE"),
}  # fmt: skip


def _scim_routes() -> set[tuple[str, str]]:
    found = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, route)
            elif "scim/" in route and pattern.name is not None:
                view_class = pattern.callback.view_class
                methods = {m.upper() for m in view_class.http_method_names if getattr(view_class, m, None)}
                found.update((pattern.name, method) for method in methods)

    walk(get_resolver().url_patterns)
    return found


def test_scim_table_covers_every_scim_route():
    assert _scim_routes() == SCIM_ROUTES


@pytest.mark.parametrize("column", COLUMNS)
def test_scim_refuses_every_role_without_a_scim_token(shared_world, column):
    from django.core.cache import cache
    from django.test import Client

    world = shared_world
    client = Client()
    if column != "anonymous":
        client.force_login(world.users[column])
    target = str(world.users["viewer"].pk)
    args = {"scim-user": [target], "scim-group": ["1"], "scim-resource-type": ["User"],
            "scim-schema": ["urn:ietf:params:scim:schemas:core:2.0:User"]}  # fmt: skip
    for name, method in sorted(SCIM_ROUTES):
        url = reverse(name, args=args.get(name, []))
        # Each refusal counts toward the address's failed-token throttle (tests/accounts/
        # test_scim_throttle.py); this table is about the refusal itself, so each starts afresh.
        cache.clear()
        if method in ("GET", "DELETE"):
            response = getattr(client, method.lower())(url)
        else:
            response = getattr(client, method.lower())(url, data="{}", content_type="application/scim+json")
        assert response.status_code == 401, (name, method, response.content)
        assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    world.users["viewer"].refresh_from_db()
    assert world.users["viewer"].is_active
