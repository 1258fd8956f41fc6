"""The API against its own OpenAPI schema, with schemathesis.

The schema is the one the portal serves (drf-spectacular's generator over the project's URLs),
loaded in-process; requests go to the portal's WSGI application in the same process, so the
rows of the test's transaction are what the API sees. Two organisations with every role are
seeded (``tests.conftest.build_world``). Every operation is called with a workflow builder's
token, a viewer's token and no token, with generated inputs (positive and negative), and once
more on a real object of the builder's workspace where it has a path parameter. Each answer
must be: no server error, a status code the operation documents, the documented content type,
and a body matching the documented schema.

Bounded and repeatable: a fixed number of examples per operation, derandomized generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, settings
from knox.models import AuthToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import SIMPLE_DEFINITION, build_world
from tests.workflows.execution_world import executions_of
from workflows.integrations.models import Integration, IntegrationRequest
from workflows.service_accounts import services as service_accounts

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 10

# The credentials endpoints read the secrets store.
pytestmark = pytest.mark.django_db(databases=["default", "secrets"])


def _portal_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


class _PortalInTestTransaction:
    """The portal's WSGI application, run the way Django's test client runs it: the signal that
    closes database connections after each request is held back, since closing would end the
    test's transaction (and the seeded rows with it)."""

    def __init__(self):
        self.application = get_wsgi_application()

    def __call__(self, environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = self.application(environ, start_response)
            body = b"".join(response)
            response.close()  # sends request_finished, as a server would
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return [body]


schema = schemathesis.openapi.from_dict(_portal_schema())
schema.app = _PortalInTestTransaction()
# The coverage phase (every boundary value of every parameter) would multiply the requests by
# about four; the suite keeps the explicit examples and a bounded, derandomized fuzzing run.
schema.config.phases.update(phases=["examples", "fuzzing"])
schema.config.generation.update(
    max_examples=EXAMPLES_PER_OPERATION, deterministic=True, with_security_parameters=False
)


def test_the_openapi_document_validates():
    """GIVEN the portal's schema WHEN validated against the OpenAPI 3.0 specification's own JSON
    Schema THEN it is valid, and every operation documents its error answers."""
    document = _portal_schema()
    validate_schema(document)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"401", "403"} <= statuses, (method, path)
            assert ("404" in statuses) == ("{" in path), (method, path)
            queried = any(p["in"] == "query" for p in operation.get("parameters", []))
            assert ("400" in statuses) == (method != "get" or queried), (method, path)
            assert ("413" in statuses) == ("requestBody" in operation), (method, path)
            assert "429" in statuses, (method, path)  # service-account tokens are throttled


@dataclass
class Callers:
    """Who calls, and the real objects of organisation A's workspace that a second call points at."""

    headers: dict[str, dict[str, str]]
    objects: dict[str, int]  # a path's resource -> the id of one of its objects
    references: dict[str, object]  # a body field -> a real value for it
    anonymous_called: bool = False

    def pointed_at_real_objects(self, case) -> bool:
        """Point ``case`` at real objects (its path's id, its body's references); False when it
        names none."""
        changed = False
        resource = case.operation.path.split("/")[3]  # /api/v1/<resource>/...
        if "id" in (case.path_parameters or {}) and resource in self.objects:
            case.path_parameters = {**case.path_parameters, "id": self.objects[resource]}
            changed = True
        if isinstance(case.body, dict):
            found = {name: value for name, value in self.references.items() if name in case.body}
            if found:
                case.body = {**case.body, **found}
                changed = True
        return changed


@pytest.fixture
def callers():
    """Two organisations seeded; the tokens of organisation A's builder and viewer, and no token."""
    world = build_world()
    owner = world.users["workspace_owner"]
    crm = Integration.objects.create(workspace=world.ws, name="CRM", slug="crm", kind="api")
    requested = IntegrationRequest.objects.create(
        workspace=world.ws,
        name="HR",
        slug="hr",
        kind="hris",
        reason="payroll",
        requested_by=world.users["workflow_builder"],
    )
    account = service_accounts.service_account_create(
        actor=owner, integration=crm, name="crm sync", scopes=["workflows:read"]
    )
    workflow = world.workflows["own"]
    return Callers(
        headers={
            "builder": {
                "Authorization": f"Token {AuthToken.objects.create(world.users['workflow_builder'])[1]}"
            },
            "viewer": {"Authorization": f"Token {AuthToken.objects.create(world.users['viewer'])[1]}"},
            "anonymous": {},
        },
        objects={
            "workspaces": world.ws.pk,
            "memberships": world.memberships["viewer"].pk,
            "workflows": workflow.pk,
            "changes": world.changes["own"].pk,
            "integration-requests": requested.pk,
            "service-accounts": account.pk,
            "executions": executions_of(world)["own"].pk,
        },
        references={
            "workspace": world.ws.pk,
            "integration": crm.pk,
            "user": world.newcomers[world.org.pk].pk,
            "base_version": workflow.versions.order_by("-number").first().pk,
            "tier": "compliance",
            "definition": SIMPLE_DEFINITION,  # valid, so that the other fields reach the services
        },
    )


@schema.parametrize()
@settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_documented(case, callers):
    """GIVEN generated requests for an operation WHEN a builder, a viewer and an anonymous caller
    send them (and again pointed at real objects) THEN no answer is a server error and every answer's
    status, content type and body are documented."""
    names = ["builder", "viewer"]
    if not callers.anonymous_called:  # the same 401 whatever the input: once per operation is enough
        names.append("anonymous")
        callers.anonymous_called = True
    for name in names:
        case.call_and_validate(headers=callers.headers[name], checks=CHECKS)
    if callers.pointed_at_real_objects(case):
        for name in ("builder", "viewer"):
            case.call_and_validate(headers=callers.headers[name], checks=CHECKS)
