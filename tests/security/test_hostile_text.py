"""Hostile text at every way in: the API's write operations (read from the OpenAPI schema), the
control panel's forms (read from the admin registry), the pages' forms (read from the URLconf) and
SCIM. Over arbitrary Unicode — NUL, unpaired surrogates, format characters — the answer is never a
server error; refused text is a field-level 4xx; accepted text round-trips unchanged (NFKC for
identifiers). The rules themselves are in tests/governance/test_text.py."""

from __future__ import annotations

import copy
import itertools
import json
import re
import unicodedata
from urllib.parse import quote_plus

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.models import User
from governance.admin_site import site
from governance.core.text import json_refusal, printable_key, text_refusal
from tests.accounts.scim_world import ScimClient, scim_token_for
from tests.governance.admin_world import objects_of as _objects_of
from tests.governance.test_api_matrix import _integration_request
from tests.workflows import conftest as workflow_fixtures
from tests.workflows.conftest import AI_STEP, TRIAGE
from tests.workflows.execution_world import executions_of
from workflows.changes.models import Workflow

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

# Bounded and reproducible: the suite stays fast and a failure replays the same way.
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SWEEP = settings(PROPERTY, max_examples=8)
PAGE_SWEEP = settings(PROPERTY, max_examples=3)  # each example is several full page renders
HOSTILE = ["\x00", "\ud800", "\udfff", "\u200b", "\u2060", "\u00ad", "\u202e", "\ufeff", "\uff4f"]
# Every code point, surrogates (Cs) included: st.text() alone leaves surrogates out.
any_text = st.text(st.characters(codec=None, categories=None), max_size=20)
hostile_text = st.one_of(
    any_text,
    st.builds(lambda a, b, c: a + b + c, any_text, st.sampled_from(HOSTILE), any_text),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)
_unique = itertools.count(1)
shop = workflow_fixtures.shop  # the workflow tests' world (integrations, EU builder), used here too


@pytest.fixture
def world(shared_world):
    """The module's one world (built once, each test in its own savepoint): the sweeps below make
    hundreds of requests, and a world per test would cost more than they do."""
    return shared_world


def _storable(value: str) -> bool:
    return text_refusal(value) is None


def _as_posted(value: str) -> str:
    """What the server reads from a form field or query parameter carrying ``value``: the bytes a
    hostile client sends (surrogates as their raw UTF-8-like bytes) decoded with replacement."""
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _form_body(data: dict[str, str]) -> str:
    """``data`` urlencoded as a hostile client would send it (surrogates included, as bytes)."""
    return "&".join(
        f"{quote_plus(key.encode('utf-8', 'surrogatepass'))}={quote_plus(value.encode('utf-8', 'surrogatepass'))}"
        for key, value in data.items()
    )


def _no_server_error(response) -> None:
    assert response.status_code < 500, (response.status_code, response.content[:500])


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _post_json(client, method: str, url: str, document) -> object:
    """Send ``document`` as JSON with \\u escapes, so NUL and lone surrogates travel as any client
    may send them."""
    return client.generic(method.upper(), url, json.dumps(document), content_type="application/json")


# --- The API: every write operation of the OpenAPI schema ---------------------------------------


def _write_operations() -> list[tuple[str, str, list[str]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in ("post", "put", "patch"):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            body = next(iter(content.values()), {}).get("schema", {})
            if "$ref" in body:
                body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
            operations.append((path, method, sorted(body.get("properties", {}))))
    return operations


WRITE_OPERATIONS = _write_operations()
# The object each resource's path parameter names, in the world's own workspace. A new resource
# fails test_every_write_operation_has_a_target until it is added here.
TARGETS = {
    "workflows": lambda world: world.workflows["own"],
    "changes": lambda world: world.changes["own"],
    "workspaces": lambda world: world.ws,
    "memberships": lambda world: world.memberships["viewer"],
    "integration-requests": lambda world: _integration_request(world, "own"),
    "credentials": lambda world: _objects_of(world, "workflows.credential")["own"],
    "service-accounts": lambda world: _objects_of(world, "workflows.serviceaccount")["own"],
    "executions": lambda world: executions_of(world)["own"],
}
ACTORS = ("workflow_builder", "workspace_owner", "compliance_officer", "platform_admin")


def _resource(path: str) -> str:
    return path.removeprefix("/api/v1/").split("/")[0]


def test_every_write_operation_has_a_target():
    """GIVEN the OpenAPI schema THEN it has write operations, and each one's resource is known."""
    assert len(WRITE_OPERATIONS) >= 8
    unknown = {path for path, _, _ in WRITE_OPERATIONS if "{" in path and _resource(path) not in TARGETS}
    assert not unknown


@pytest.mark.parametrize(("path", "method", "fields"), WRITE_OPERATIONS, ids=lambda v: str(v))
def test_api_write_operations_never_fail_on_hostile_text(shared_world, path, method, fields):
    """GIVEN any write operation of the API WHEN its fields (and others) carry arbitrary Unicode
    THEN no server error; unstorable text is a 400 keyed by the field that carried it."""
    world = shared_world
    url = (
        re.sub(r"\{[^}]+\}", lambda _: str(TARGETS[_resource(path)](world).pk), path) if "{" in path else path
    )

    @SWEEP
    @given(
        actor=st.sampled_from(ACTORS),
        body=st.dictionaries(st.sampled_from(fields or ["x"]) | hostile_text, json_values, max_size=5),
    )
    def check(actor, body):
        response = _post_json(_api(world.users[actor]), method, url, body)
        _no_server_error(response)
        refused = [printable_key(key) for key, value in body.items() if json_refusal({key: value})]
        if refused and fields:  # an operation that reads a body refuses it, by the field that carried it
            assert response.status_code in (400, 403, 404, 405), response.content
            if response.status_code == 400:
                assert refused[0] in response.json(), response.json()

    check()


def _read_operations() -> list[tuple[str, list[str]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, sorted(p["name"] for p in item["get"].get("parameters", []) if p["in"] == "query"))
        for path, item in schema["paths"].items()
        if "get" in item
    ]


@pytest.mark.parametrize(("path", "parameters"), _read_operations(), ids=lambda v: str(v))
def test_api_query_parameters_never_fail_on_hostile_text(shared_world, path, parameters):
    """GIVEN any read operation of the API WHEN its query parameters (and unknown ones) carry
    arbitrary Unicode, as a hostile client's bytes THEN no server error."""
    world = shared_world
    url = (
        re.sub(r"\{[^}]+\}", lambda _: str(TARGETS[_resource(path)](world).pk), path) if "{" in path else path
    )

    @SWEEP
    @given(actor=st.sampled_from(ACTORS), values=st.lists(hostile_text, min_size=1, max_size=4))
    def check(actor, values):
        names = [*parameters, "page_size", "cursor", values[0] or "x"]
        query = _form_body({name: values[index % len(values)] for index, name in enumerate(names)})
        _no_server_error(_api(world.users[actor]).get(f"{url}?{query}"))

    check()


def _workflow_body(name: str, summary: str, text: str) -> dict:
    definition = copy.deepcopy(TRIAGE)
    definition["steps"][3]["expression"] = text
    definition["steps"].append({**AI_STEP, "id": "ask", "prompt": text, "output_schema": {text: text}})
    definition["steps"][3]["next"] = "ask"
    return {"workspace": None, "name": name, "slug": f"hostile-{next(_unique)}", "environment": "staging",
            "data_region": "EU", "handles_pii": False, "definition": definition, "summary": summary}  # fmt: skip


def test_api_workflow_create_round_trips_or_refuses(shop):
    """GIVEN a workflow created through the API with arbitrary text in its name, summary and deep
    inside its definition THEN either 201 and the stored values are the sent ones, or a 400 keyed by
    the field that carried the unstorable text; never a server error."""
    world = shop
    client = _api(world.users["workflow_builder"])

    @PROPERTY
    @given(name=hostile_text, summary=hostile_text, text=hostile_text)
    def check(name, summary, text):
        body = _workflow_body(name, summary, text)
        body["workspace"] = world.ws.pk
        response = _post_json(client, "post", reverse("api-workflow-list"), body)
        _no_server_error(response)
        stored = Workflow.objects.filter(slug=body["slug"]).first()
        if response.status_code == 201:
            assert stored.name == name.strip()
            assert stored.versions.get().definition == body["definition"]
            return
        assert response.status_code == 400
        assert stored is None
        errors = response.json()
        if not _storable(text):
            assert errors["definition"][0].startswith(("steps[3].expression:", "steps[4]"))
        if not _storable(name):
            assert "name" in errors
        if not _storable(summary):
            assert "summary" in errors

    check()


def test_api_new_version_refuses_nul_and_round_trips_the_rest(shop):
    """GIVEN a new version through the API THEN NUL and lone surrogates in the definition are a
    400 on "definition" naming the step; other text is stored as sent."""
    from tests.workflows.conftest import new_workflow

    world = shop
    change = new_workflow(world)
    client = _api(world.users["workflow_builder"])
    url = reverse("api-workflow-versions", args=[change.workflow_id])
    latest = {"pk": change.version.pk}

    @PROPERTY
    @given(text=hostile_text)
    def check(text):
        definition = copy.deepcopy(TRIAGE)
        definition["steps"][1]["condition"] = text
        response = _post_json(client, "post", url, {"definition": definition, "base_version": latest["pk"],
                                                     "summary": "edit"})  # fmt: skip
        _no_server_error(response)
        if _storable(text) and response.status_code == 201:
            version = Workflow.objects.get(pk=change.workflow_id).versions.order_by("-number").first()
            assert version.definition == definition
            latest["pk"] = version.pk
        elif not _storable(text):
            assert response.status_code == 400
            assert response.json()["definition"][0].startswith("steps[1].condition: Remove")

    check()


# --- SCIM ---------------------------------------------------------------------------------------


def _scim_refusal(response, attribute: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["scimType"] == "invalidValue", body
    assert attribute in body["detail"], body


def test_scim_users_round_trip_or_refuse_naming_the_attribute(world):
    """GIVEN SCIM users created with arbitrary text in userName's local part, displayName,
    externalId and name THEN no server error; unstorable text is a 400 invalidValue naming the
    attribute; an accepted user reads back as sent (userName NFKC and lower-cased)."""
    scim = ScimClient(scim_token_for(world))

    @PROPERTY
    @given(local=hostile_text, display=hostile_text, external=hostile_text, given_name=hostile_text)
    def check(local, display, external, given_name):
        user_name = f"{local}.{next(_unique)}@acme.test"
        document = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name,
                    "displayName": display, "externalId": external, "name": {"givenName": given_name}}  # fmt: skip
        response = scim.post("/Users", document)
        _no_server_error(response)
        found = json_refusal(document)
        if found:
            _scim_refusal(response, found[0])
            return
        if response.status_code != 201:
            assert response.status_code in (400, 409), response.content
            return
        read = scim.get(f"/Users/{response.json()['id']}").json()
        assert read["userName"] == unicodedata.normalize("NFKC", user_name).strip().lower()
        assert read["displayName"] == (display.strip() or None)
        assert read["externalId"] == (external.strip() or None)

    check()


@pytest.mark.parametrize("invisible", ["\u200b", "\u2060", "\u00ad", "\u202e", "\ufeff"])
def test_scim_refuses_invisible_characters_in_user_names(world, invisible):
    """GIVEN officer@demo.example with an invisible character after or inside it THEN SCIM answers
    400 invalidValue on userName, on create and on PATCH, and no account is made or changed."""
    scim = ScimClient(scim_token_for(world))
    for user_name in (f"officer@demo.example{invisible}", f"offi{invisible}cer@demo.example"):
        _scim_refusal(scim.post("/Users", {"userName": user_name}), "userName")
    viewer = world.users["viewer"]
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "path": "userName", "value": f"viewer@acme.test{invisible}"}]}  # fmt: skip
    _scim_refusal(scim.patch(f"/Users/{viewer.pk}", patch), "userName")
    assert not User.objects.filter(email__startswith="officer@demo").exists()
    viewer.refresh_from_db()
    assert viewer.email == "viewer@acme.test"


def test_scim_groups_round_trip_or_refuse_naming_the_attribute(world):
    """GIVEN SCIM groups with arbitrary display names and external ids THEN no server error; a
    lone surrogate or NUL is a 400 invalidValue naming the attribute; accepted names read back."""
    scim = ScimClient(scim_token_for(world))

    @PROPERTY
    @given(display=hostile_text, external=hostile_text)
    def check(display, external):
        document = {"displayName": f"{display}{next(_unique)}", "externalId": external}
        response = scim.post("/Groups", document)
        _no_server_error(response)
        found = json_refusal(document)
        if found:
            _scim_refusal(response, found[0])
        elif response.status_code == 201:
            read = scim.get(f"/Groups/{response.json()['id']}").json()
            assert read["displayName"] == document["displayName"].strip()

    check()


def test_scim_lone_surrogate_reproduction(world):
    """GIVEN the probe's request: a lone surrogate in a SCIM user's and a group's name THEN 400."""
    scim = ScimClient(scim_token_for(world))
    user = scim.post("/Users", raw=b'{"userName": "ada@acme.test", "displayName": "Ada \\ud800"}')
    _scim_refusal(user, "displayName")
    group = scim.post("/Groups", raw=b'{"displayName": "Ops \\ud800"}')
    _scim_refusal(group, "displayName")


# --- The control panel: every registered admin's forms and lists --------------------------------

ADMIN_ACTORS = ("platform_admin", "compliance_officer", "workspace_owner", "auditor")


def _form_fields(response) -> list[str]:
    """The input names of the forms and formsets a page rendered (from its template context)."""
    from django.forms import BaseForm, BaseFormSet

    names: list[str] = []
    context = response.context
    if context is None:
        return names
    for key in context.keys():  # noqa: SIM118 - a ContextList iterates its contexts, not keys
        value = context[key]
        form = getattr(value, "form", value)  # the admin's AdminForm wraps the form
        if isinstance(form, BaseForm):
            names += [form.add_prefix(name) for name in form.fields]
        elif isinstance(value, BaseFormSet):
            names += [value.management_form.add_prefix(name) for name in value.management_form.fields]
            names += [
                value.empty_form.add_prefix(name).replace("__prefix__", "0")
                for name in value.empty_form.fields
            ]
    return sorted(set(names))


def _signed_in(client, world, actor: str):
    client.force_login(world.users[actor])
    return client


def _first_open(client, world, url: str, actors=ADMIN_ACTORS):
    """The first of ``actors`` to whom ``url`` opens (200), with that response; or (None, None)."""
    for actor in actors:
        client.logout()
        response = _signed_in(client, world, actor).get(url)
        _no_server_error(response)
        if response.status_code == 200:
            return actor, response
    return None, None


def _post_hostile(client, url: str, fields: list[str], values: list[str]):
    data = {name: values[index % len(values)] for index, name in enumerate(fields or ["x"])}
    return client.generic("POST", url, _form_body(data), content_type="application/x-www-form-urlencoded")


ADMIN_MODELS = sorted(model._meta.label_lower for model in site._registry)


@pytest.mark.parametrize("label", ADMIN_MODELS)
def test_admin_forms_and_lists_never_fail_on_hostile_text(shared_world, client, label):
    """GIVEN every admin of the control panel WHEN its add and change forms are posted with
    arbitrary Unicode in every field, and its list is searched and filtered with it THEN no server
    error."""
    world = shared_world
    model = next(model for model in site._registry if model._meta.label_lower == label)
    meta = model._meta
    urls = [reverse(f"admin:{meta.app_label}_{meta.model_name}_add")]
    own = _objects_of(world, label).get("own")
    if own is not None:
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[own.pk]))
    forms = []
    for url in urls:
        actor, response = _first_open(client, world, url)
        if actor is not None:
            forms.append((actor, url, _form_fields(response)))
    changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    list_actor, _ = _first_open(client, world, changelist)

    @PAGE_SWEEP
    @given(values=st.lists(hostile_text, min_size=1, max_size=4), search=hostile_text, param=hostile_text)
    def check(values, search, param):
        for actor, url, fields in forms:
            client.logout()
            _no_server_error(_post_hostile(_signed_in(client, world, actor), url, fields, values))
        if list_actor is not None:
            client.logout()
            _signed_in(client, world, list_actor)
            query = _form_body({"q": search, param or "p": search})
            _no_server_error(client.get(f"{changelist}?{query}"))

    check()


@pytest.mark.parametrize("invisible", ["\u200b", "\u2060", "\u00ad", "\u202e"])
def test_control_panel_refuses_invisible_characters_in_an_address(world, client, invisible):
    """GIVEN a platform administrator adding an account WHEN the address holds an invisible
    character THEN the e-mail field shows the error and no account is made; a full-width address
    is stored as its ASCII form."""
    _signed_in(client, world, "platform_admin")
    url = reverse("admin:accounts_user_add")
    _, page = _first_open(client, world, url, actors=("platform_admin",))
    base = dict.fromkeys(_form_fields(page), "")
    response = client.post(url, {**base, "email": f"officer@demo.example{invisible}", "region": "EU"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "invisible or control character" in errors["email"][0]
    assert not User.objects.filter(email__startswith="officer@demo").exists()


def test_control_panel_stores_full_width_addresses_as_ascii(world, client):
    """GIVEN a full-width look-alike address THEN the account is stored under the ASCII address."""
    _signed_in(client, world, "platform_admin")
    url = reverse("admin:accounts_user_add")
    _, page = _first_open(client, world, url, actors=("platform_admin",))
    base = dict.fromkeys(_form_fields(page), "")
    response = client.post(url, {**base, "email": "ｎｅｗ@acme.test", "region": "EU", "is_active": "on"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.filter(email="new@acme.test").exists()


# --- The pages: every form the URLconf routes to ------------------------------------------------


def _page_patterns(resolver=None, prefix=""):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _page_patterns(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.name


# Pages whose tests live elsewhere: the control panel (above), the API and SCIM (above), and the
# WebAuthn ceremony's JSON endpoints (the library's own input checks, tested in test_mfa_webauthn).
_ELSEWHERE = ("admin/", "api/", "scim/", "accounts/mfa/webauthn/")
PAGES = sorted({path for path, _ in _page_patterns() if not path.startswith(_ELSEWHERE)})
_INT_PARAMS = {
    "workflow_id": lambda world: world.workflows["own"].pk,
    "change_id": lambda world: world.changes["own"].pk,
    "override_id": lambda world: world.overrides["own"].pk,
    "request_id": lambda world: _integration_request(world, "own").pk,
    "device_id": lambda world: 1,
    "workspace_id": lambda world: world.ws.pk,
    "task_id": lambda world: 1,
    "execution_id": lambda world: executions_of(world)["own"].pk,
}
PAGE_ACTORS = ("workflow_builder", "workspace_owner", "platform_admin", None)


def _page_url(world, path: str, text: str) -> str:
    """``path`` with its int parameters set to the world's own objects and the others to ``text``
    (percent-encoded bytes, surrogates included)."""
    hostile = quote_plus(text.encode("utf-8", "surrogatepass")) or "x"

    def int_param(match):
        return str(_INT_PARAMS[match[1]](world))

    path = re.sub(r"<int:(\w+)>", int_param, path)
    path = re.sub(r"<(?:str|slug|path):\w+>", hostile, path)
    path = re.sub(r"\(\?P<\w+>[^)]*\)", hostile, path)
    return "/" + path.replace("^", "").replace("$", "")


@pytest.mark.parametrize("path", PAGES)
def test_pages_never_fail_on_hostile_text(shared_world, client, path):
    """GIVEN every page of the URLconf (outside the control panel, API and SCIM) WHEN its forms'
    fields, its query string and its path parameters carry arbitrary Unicode, for a builder, an
    owner, an administrator and a visitor THEN no server error."""
    world = shared_world
    probe = _page_url(world, path, "x")
    fields: dict[str | None, list[str]] = {}
    for actor in PAGE_ACTORS:
        client.logout()
        if actor:
            _signed_in(client, world, actor)
        response = client.get(probe)
        _no_server_error(response)
        fields[actor] = _form_fields(response) if response.status_code == 200 else []

    @PAGE_SWEEP
    @given(actor=st.sampled_from(PAGE_ACTORS), values=st.lists(hostile_text, min_size=1, max_size=4))
    def check(actor, values):
        client.logout()
        if actor:
            _signed_in(client, world, actor)
        url = _page_url(world, path, values[0])
        _no_server_error(client.get(f"{url}?{_form_body({'q': values[-1], 'mode': values[0]})}"))
        _no_server_error(_post_hostile(client, url, fields[actor] + ["session", "code"], values))

    check()


def test_json_view_refuses_nul_in_a_definition_on_its_field(shop, client):
    """GIVEN the expert JSON view WHEN the definition holds an escaped NUL or lone surrogate THEN
    the page shows the error on the definition field, naming the step, and nothing is saved."""
    world = shop
    _signed_in(client, world, "workflow_builder")
    for bad in ("a\x00b", "\ud800"):
        definition = copy.deepcopy(TRIAGE)
        definition["steps"][3]["expression"] = bad
        response = client.post(reverse("workflow-create") + "?mode=json", {
            "workspace": world.ws.pk, "name": "T", "slug": "t-json", "environment": "staging",
            "data_region": "EU", "summary": "v1", "definition": json.dumps(definition)})  # fmt: skip
        assert response.status_code == 200
        errors = response.context["change_form"].errors["definition"]
        assert errors[0].startswith("steps[3].expression: Remove")
        assert not Workflow.objects.filter(slug="t-json").exists()


def test_json_view_round_trips_accepted_text(shop, client):
    """GIVEN the JSON view WHEN a definition's strings carry arbitrary storable Unicode THEN the
    stored definition is exactly the one sent; unstorable text is a field error."""
    world = shop
    _signed_in(client, world, "workflow_builder")

    @PROPERTY
    @given(text=hostile_text)
    def check(text):
        definition = copy.deepcopy(TRIAGE)
        definition["steps"][3]["expression"] = text or "x"
        slug = f"json-{next(_unique)}"
        response = client.post(reverse("workflow-create") + "?mode=json", {
            "workspace": world.ws.pk, "name": "T", "slug": slug, "environment": "staging",
            "data_region": "EU", "summary": "v1", "definition": json.dumps(definition)})  # fmt: skip
        _no_server_error(response)
        stored = Workflow.objects.filter(slug=slug).first()
        if response.status_code == 302:
            assert stored.versions.get().definition == definition
        elif not _storable(text):
            assert stored is None
            assert response.context["change_form"].errors["definition"][0].startswith("steps[3].expression:")

    check()


def test_structured_editor_round_trips_accepted_text(shop, client):
    """GIVEN the structured editor WHEN a step's expression and the workflow name carry arbitrary
    Unicode (as a hostile client's bytes) THEN no server error and accepted text is stored as the
    server read it."""
    world = shop
    _signed_in(client, world, "workflow_builder")

    @PROPERTY
    @given(text=hostile_text, name=hostile_text)
    def check(text, name):
        slug = f"form-{next(_unique)}"
        data = {"workspace": str(world.ws.pk), "name": name, "slug": slug, "environment": "staging",
                "data_region": "EU", "summary": "v1", "base_version": "", "trigger_type": "manual",
                "trigger_cron": "", "trigger_path": "", "steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "0",
                "steps-MIN_NUM_FORMS": "0", "steps-MAX_NUM_FORMS": "100", "steps-0-id": "tag",
                "steps-0-type": "transform", "steps-0-expression": text, "steps-0-ORDER": "1"}  # fmt: skip
        response = client.generic(
            "POST",
            reverse("workflow-create"),
            _form_body(data),
            content_type="application/x-www-form-urlencoded",
        )
        _no_server_error(response)
        stored = Workflow.objects.filter(slug=slug).first()
        if response.status_code == 302:
            assert stored.name == _as_posted(name).strip()
            assert stored.versions.get().definition["steps"][0]["expression"] == _as_posted(text).strip()
        else:
            assert stored is None

    check()


def test_a_non_numeric_session_id_is_a_message_not_an_error(world, client):
    """GIVEN the sessions page WHEN a session id that is not a number is posted THEN the person is
    sent back to the page with the message, and no session ends."""
    from accounts.models import UserSession

    _signed_in(client, world, "viewer")
    live = UserSession.objects.filter(ended_at__isnull=True).count()
    for value in ("abc", "1e5", "\x00", "-1", "99999999999999999999999"):
        response = client.post(reverse("account-sessions"), {"session": value}, follow=True)
        assert response.status_code == 200
        assert "That is not one of your sessions." in [str(m) for m in response.context["messages"]]
    assert UserSession.objects.filter(ended_at__isnull=True).count() == live


@pytest.mark.parametrize("override", ["\u202e", "\u202d", "\u2066", "\u2067", "\u2068"])
@pytest.mark.parametrize("field", ["name", "summary"])
def test_a_workflow_name_or_summary_with_a_bidi_override_is_refused_on_its_field(
    shop, client, field, override
):
    """What reviewers read — a workflow's name, a change's one-line summary — reads as it is
    stored: a right-to-left override or isolate (``Pay\u202eyrtne``) is a field error on the
    builder's page and in the API, as it is for the AI register's names. Right-to-left text
    itself is kept."""
    from tests.workflows.test_pages import SETTINGS, structured

    spoofed = f"Vendor sync {override}kcabllor"
    client.force_login(shop.users["workflow_builder"])
    data = {**SETTINGS, "workspace": shop.ws.pk, **structured(), field: spoofed}
    body = client.post(reverse("workflow-create"), data).content.decode()
    assert f'href="#id_{field}"' in body
    assert "bidirectional-override" in body
    assert not Workflow.objects.filter(slug=SETTINGS["slug"]).exists()

    api_body = _workflow_body("Ticket triage", "First version", "1")
    api_body.update(workspace=shop.ws.pk, **{field: spoofed})
    response = _post_json(
        _api(shop.users["workflow_builder"]), "post", reverse("api-workflow-list"), api_body
    )
    assert response.status_code == 400
    assert list(response.json()) == [field]

    kept = {**data, field: "Zahlungen \u05e9\u05dc\u05d5\u05dd"}  # Hebrew, no control character
    assert client.post(reverse("workflow-create"), kept).status_code == 302
