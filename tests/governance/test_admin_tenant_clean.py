"""Tenant-clean control panel: no list filter, form choice list or autocomplete answer of any
registered admin offers another organisation's rows, whatever the role.

Two organisations are seeded with every kind of record the control panel shows (workspaces,
memberships, identity providers and group mappings, service accounts, integrations, credentials,
keys, policies, SCIM tokens and groups, evidence orders...). For every registered admin and every
role, the changelist's filters, the add form and the change form of an own object are rendered;
neither a primary key (in a filter's or a choice field's values) nor a label (anywhere on the page)
of the other organisation's objects may appear.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db.models import Model
from django.urls import reverse

from governance.admin_site import site
from governance.core.resources import registered_resources
from tests.conftest import ROLE_ORDER
from tests.governance.admin_world import objects_of, seed_everything

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

ADMIN_LABELS = sorted(model._meta.label_lower for model in site._registry)


def _model(label: str) -> type[Model]:
    return next(model for model in site._registry if model._meta.label_lower == label)


def _secret_rows(world) -> tuple[dict, list]:
    """Credentials live in the secrets store and are placed by a plain workspace id."""
    from workflows.credentials.models import Credential

    own_workspaces = list(world.org.workspaces.values_list("pk", flat=True))
    rows = Credential.objects.using("secrets").all()
    foreign = [row for row in rows if row.workspace_id not in own_workspaces]
    own = [row for row in rows if row.workspace_id in own_workspaces]
    return {Credential: {str(row.pk) for row in foreign}}, own


class Tenants:
    """The rows of the other organisation, by model (primary keys) and by label; labels that some
    own or organisation-less row also carries are ambiguous and are not looked for."""

    def __init__(self, world):
        self.foreign_pks: dict[type[Model], set[str]] = {}
        foreign_labels: set[str] = set()
        own_labels: set[str] = set()
        for resource in registered_resources():
            path = resource.organization_field
            manager = resource.model._default_manager
            if path is None:
                own_labels.update(str(row) for row in manager.all())
                continue
            foreign = list(manager.filter(**{f"{path}__isnull": False}).exclude(**{path: world.org.pk}))
            own_labels.update(str(row) for row in manager.exclude(pk__in=[row.pk for row in foreign]))
            self.foreign_pks[resource.model] = {str(row.pk) for row in foreign}
            foreign_labels.update(str(row) for row in foreign)
        secret_pks, own_secrets = _secret_rows(world)
        self.foreign_pks.update(secret_pks)
        own_labels.update(str(row) for row in own_secrets)
        self.labels = {label for label in foreign_labels - own_labels if len(label) >= 4}

    def pks_of(self, model) -> set[str]:
        return self.foreign_pks.get(model._meta.concrete_model, set())


def _assert_page_clean(tenants: Tenants, response, where: str) -> None:
    page = response.content.decode()
    shown = sorted(label for label in tenants.labels if label in page)
    assert shown == [], f"{where}: another organisation's rows named on the page: {shown}"


def _assert_filters_clean(tenants: Tenants, response, where: str) -> None:
    changelist = response.context_data["cl"]
    for spec in changelist.filter_specs:
        field = getattr(spec, "field", None)
        remote = getattr(getattr(field, "remote_field", None), "model", None)
        if remote is None:
            continue
        offered = {str(pk) for pk, _label in getattr(spec, "lookup_choices", [])}
        leaked = offered & tenants.pks_of(remote)
        assert not leaked, f"{where}: filter {spec.title!r} offers {remote.__name__} {sorted(leaked)}"


def _forms_of(context) -> list:
    forms = []
    adminform = context.get("adminform")
    if adminform is not None:
        forms.append(adminform.form)
    for inline in context.get("inline_admin_formsets", []):
        forms.extend(inline.formset.forms)
        forms.append(inline.formset.empty_form)
    return forms


def _assert_choices_clean(tenants: Tenants, response, where: str) -> None:
    for form in _forms_of(response.context_data):
        for name, field in form.fields.items():
            queryset = getattr(field, "queryset", None)
            if queryset is None:
                continue
            # What the field offers: its queryset, or the list a form put in its place.
            offered = {str(getattr(value, "value", value)) for value, _label in field.choices if value != ""}
            leaked = offered & tenants.pks_of(queryset.model)
            assert not leaked, f"{where}: field {name!r} offers {queryset.model.__name__} {sorted(leaked)}"


@pytest.fixture(scope="module")
def signed_in_cookies(_module_world):
    """Per role, a session signed in with MFA passed, made once for the module's world."""
    from django.test import Client

    from tests.conftest import mfa_complete

    cookies = {}
    for code, user in _module_world.users.items():
        client = Client()
        client.force_login(user)
        mfa_complete(client, user)
        cookies[code] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return cookies


@pytest.fixture(scope="module")
def _seeded_world(_module_world, django_db_blocker):
    """The module's world with every source's objects in both organisations, made once inside
    the module's transactions (the secrets store's included) and rolled back after its last test."""
    from django.db import transaction

    with django_db_blocker.unblock(), transaction.atomic(using="secrets"):
        seed_everything(_module_world)
        yield _module_world, Tenants(_module_world)
        transaction.set_rollback(True, using="secrets")


@pytest.fixture
def seeded(_seeded_world, db):
    """A fresh copy of the seeded world (see ``shared_world``), with the other organisation's rows."""
    import copy

    world, tenants = _seeded_world
    return copy.deepcopy(world), tenants


def _own_object(world, label: str):
    own = objects_of(world, label).get("own")
    if own is None and label == "tenancy.role":
        from governance.tenancy.models import Role

        own = Role.objects.get(pk="viewer")
    return own


@pytest.mark.parametrize("role", ROLE_ORDER)
@pytest.mark.parametrize("label", ADMIN_LABELS)
def test_filters_and_choices_offer_no_other_organisation(seeded, signed_in_cookies, client, label, role):
    """GIVEN two organisations with every kind of record, and a user of the first holding ``role``
    WHEN they open the changelist, the add page and an own object's change page of the admin
    THEN no filter or choice offers the second organisation's rows and no page names them."""
    world, tenants = seeded
    assert tenants.labels, "the second organisation must have rows to look for"
    client.cookies[settings.SESSION_COOKIE_NAME] = signed_in_cookies[role]
    model = _model(label)
    meta = model._meta
    prefix = f"admin:{meta.app_label}_{meta.model_name}"

    changelist = client.get(reverse(f"{prefix}_changelist"))
    if changelist.status_code == 200:
        where = f"{label} changelist as {role}"
        _assert_filters_clean(tenants, changelist, where)
        _assert_page_clean(tenants, changelist, where)
    add = client.get(reverse(f"{prefix}_add"))
    if add.status_code == 200:
        where = f"{label} add page as {role}"
        _assert_choices_clean(tenants, add, where)
        _assert_page_clean(tenants, add, where)
    own = _own_object(world, label)
    if own is not None:
        change = client.get(reverse(f"{prefix}_change", args=[own.pk]))
        if change.status_code == 200:
            where = f"{label} change page as {role}"
            _assert_choices_clean(tenants, change, where)
            _assert_page_clean(tenants, change, where)


def test_membership_workspace_filter_lists_only_visible_workspaces(shared_world, client):
    """GIVEN an auditor of one workspace of an organisation with two workspaces, and another
    organisation WHEN the auditor opens the memberships list THEN the "by workspace" filter offers
    the auditor's workspace only: neither the sibling nor the other organisation's workspace."""
    world = shared_world
    _signed_in(client, world.users["auditor"])
    response = client.get(reverse("admin:tenancy_membership_changelist"))
    assert response.status_code == 200
    spec = next(s for s in response.context_data["cl"].filter_specs if s.field_path == "workspace")
    assert [pk for pk, _label in spec.lookup_choices] == [world.ws.pk]
    assert world.foreign.name not in response.content.decode()


def test_group_mapping_provider_filter_lists_own_providers(shared_world, client):
    """GIVEN both organisations with identity providers (two in the first, so that the filter shows)
    WHEN the platform administrator opens the group mappings list THEN the "by provider" filter
    offers their own providers only, and the page neither names nor links the other's."""
    from accounts.models import IdentityProvider, ProviderKind
    from tests.accounts.sso_admin_world import sso_objects_of

    world = shared_world
    providers = sso_objects_of(world)["accounts.identityprovider"]
    second = IdentityProvider.objects.create(
        organization=world.org, kind=ProviderKind.OIDC, name="second IdP", slug="second-idp",
        oidc_issuer="https://idp.example/", oidc_client_id="second-client",
    )  # fmt: skip
    _signed_in(client, world.users["platform_admin"])
    response = client.get(reverse("admin:accounts_grouprolemapping_changelist"))
    spec = next(s for s in response.context_data["cl"].filter_specs if s.field_path == "provider")
    assert sorted(str(pk) for pk, _label in spec.lookup_choices) == sorted(
        [str(providers["own"].pk), str(second.pk)]
    )
    page = response.content.decode()
    assert str(providers["foreign"].pk) not in page
    assert providers["foreign"].name not in page


def _signed_in(client, user) -> None:
    from tests.conftest import mfa_complete

    client.force_login(user)
    mfa_complete(client, user)


def _autocomplete(client, app_label: str, model_name: str, field_name: str, term: str = ""):
    return client.get(
        reverse("admin:autocomplete"),
        {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": term},
    )


@pytest.mark.parametrize(
    ("app_label", "model_name", "field_name"),
    [
        ("tenancy", "membership", "workspace"),  # a registered admin that declares no autocomplete
        ("accounts", "usersession", "user"),  # a model the control panel does not show
    ],
)
def test_autocomplete_answers_only_fields_an_admin_declares(
    shared_world, client, app_label, model_name, field_name
):
    """GIVEN the platform administrator WHEN they ask the autocomplete for a field no governed admin
    declares in its ``autocomplete_fields`` THEN it is refused (403), whatever the target lists."""
    _signed_in(client, shared_world.users["platform_admin"])
    assert _autocomplete(client, app_label, model_name, field_name).status_code == 403


@pytest.fixture
def membership_autocomplete(monkeypatch):
    """The memberships admin as if it offered the workspace through an autocomplete."""
    from governance.tenancy.admin import MembershipAdmin
    from governance.tenancy.models import Membership

    declared = type("AutocompleteMembershipAdmin", (MembershipAdmin,), {"autocomplete_fields": ["workspace"]})
    monkeypatch.setitem(site._registry, Membership, declared(Membership, site))


@pytest.mark.parametrize(
    ("role", "expected"),
    [("platform_admin", {"own", "sibling"}), ("workspace_owner", {"own"}), ("auditor", None)],
)
def test_autocomplete_offers_visible_rows_to_those_who_may_write(
    shared_world, client, membership_autocomplete, role, expected
):
    """GIVEN an admin declaring an autocomplete on the membership's workspace WHEN each role asks it
    THEN those who may add or change memberships get the workspaces they may see (never the other
    organisation's), and those who may only read memberships are refused."""
    world = shared_world
    _signed_in(client, world.users[role])
    response = _autocomplete(client, "tenancy", "membership", "workspace")
    if expected is None:
        assert response.status_code == 403
        return
    assert response.status_code == 200
    ids = {int(result["id"]) for result in response.json()["results"]}
    by_scope = {"own": world.ws.pk, "sibling": world.sibling.pk}
    assert ids == {by_scope[scope] for scope in expected}
    assert world.foreign.pk not in ids


def test_a_choice_of_an_ungoverned_model_offers_nothing(shared_world, rf):
    """GIVEN a model the decision point does not govern (content types) WHEN a governed admin builds
    a choice list or a filter of it THEN nothing is offered, not every row."""
    from django.contrib.contenttypes.models import ContentType

    from governance.access.admin_base import visible_choices

    request = rf.get("/")
    request.user = shared_world.users["platform_admin"]
    assert ContentType.objects.exists()
    assert not visible_choices(request, ContentType, site).exists()


def test_list_filters_are_swapped_for_governed_ones():
    """GIVEN list_filter entries with Django's filters that read other rows WHEN a governed admin
    builds its filters THEN relations and free values use the governed filters, fixed choices stay,
    and a custom relation filter that does not ask the decision point is a configuration error."""
    from django.contrib import admin
    from django.core.exceptions import ImproperlyConfigured

    from governance.access.admin_base import (
        GovernedAllValuesFieldListFilter,
        GovernedRelatedFieldListFilter,
        GovernedRelatedOnlyFieldListFilter,
        governed_list_filter,
    )
    from governance.tenancy.models import Membership

    assert governed_list_filter(Membership, "workspace") == ("workspace", GovernedRelatedFieldListFilter)
    assert governed_list_filter(Membership, "workspace__data_region") == "workspace__data_region"
    assert governed_list_filter(Membership, "workspace__name") == (
        "workspace__name",
        GovernedAllValuesFieldListFilter,
    )
    assert governed_list_filter(Membership, ("workspace", admin.RelatedOnlyFieldListFilter)) == (
        "workspace",
        GovernedRelatedOnlyFieldListFilter,
    )

    class Homemade(admin.RelatedFieldListFilter):
        pass

    with pytest.raises(ImproperlyConfigured):
        governed_list_filter(Membership, ("workspace", Homemade))


def test_group_mapping_form_offers_own_providers_workspaces_and_workspace_roles(shared_world, client):
    """GIVEN both organisations with an identity provider WHEN the platform administrator opens the
    add page of a group mapping THEN it offers their own provider, their organisation's workspaces
    and workspace roles only."""
    from governance.tenancy.models import Role, RoleScope
    from tests.accounts.sso_admin_world import sso_objects_of

    world = shared_world
    providers = sso_objects_of(world)["accounts.identityprovider"]
    _signed_in(client, world.users["platform_admin"])
    response = client.get(reverse("admin:accounts_grouprolemapping_add"))
    fields = response.context_data["adminform"].form.fields

    def offered(name):
        return {str(getattr(value, "value", value)) for value, _label in fields[name].choices if value != ""}

    assert offered("provider") == {str(providers["own"].pk)}
    assert offered("workspace") == {str(world.ws.pk), str(world.sibling.pk)}
    workspace_roles = Role.objects.filter(scope=RoleScope.WORKSPACE).values_list("pk", flat=True)
    assert offered("role") == set(workspace_roles)
