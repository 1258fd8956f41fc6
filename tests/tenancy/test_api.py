"""Memberships over the API: field-level 400s for bad input, nothing written, flat query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent
from governance.tenancy.models import Membership
from tests.conftest import member
from tests.factories import UserFactory, WorkspaceFactory


@pytest.fixture
def owner_client(world):
    client = APIClient()
    client.force_authenticate(world.users["workspace_owner"])
    return client


def _counts():
    return Membership.objects.count(), AuditEvent.objects.count()


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("unknown role", "role"),
        ("missing workspace", "workspace"),
        ("foreign workspace", "workspace"),
        ("sibling workspace", "workspace"),
        ("user of another organisation", "user"),
        ("duplicate", "user"),
        ("last owner demoted", "role"),
        ("wrong types", "user"),
        ("empty body", "user"),
    ],
)
def test_bad_input_gets_a_field_error_and_writes_nothing(world, owner_client, case, field):
    newcomer = world.newcomers[world.org.pk]
    base = {"user": newcomer.pk, "workspace": world.ws.pk, "role": "viewer"}
    before = _counts()
    if case == "last owner demoted":
        response = owner_client.patch(
            reverse("membership-detail", args=[world.memberships["workspace_owner"].pk]),
            {"role": "viewer"},
            format="json",
        )
    else:
        body = {
            "unknown role": {**base, "role": "superhero"},
            "missing workspace": {**base, "workspace": 987_654},
            "foreign workspace": {**base, "workspace": world.foreign.pk},
            "sibling workspace": {**base, "workspace": world.sibling.pk},
            "user of another organisation": {**base, "user": world.foreign_user.pk},
            "duplicate": {**base, "user": world.users["viewer"].pk},
            "wrong types": {"user": ["x"], "workspace": {"a": 1}, "role": 5},
            "empty body": {},
        }[case]
        response = owner_client.post(reverse("membership-list"), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert _counts() == before


def test_malformed_json_is_a_400_not_a_500(owner_client):
    response = owner_client.generic(
        "POST", reverse("membership-list"), "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_refusal_says_why(world):
    client = APIClient()
    client.force_authenticate(world.users["viewer"])
    response = client.get(reverse("membership-list"))
    assert response.status_code == 403
    assert "none of your roles grants this" in response.json()["detail"]


def test_token_authentication_works_and_is_stored_as_a_digest(world):
    from knox.models import AuthToken

    from accounts.services import api_token_create

    token = api_token_create(actor=None, user=world.users["auditor"], hours=1)
    stored = AuthToken.objects.get(user=world.users["auditor"])
    assert token not in (stored.digest, stored.token_key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(reverse("workspace-list")).status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * len(token))
    assert client.get(reverse("workspace-list")).status_code == 401


@pytest.mark.parametrize("url_name", ["membership-list", "workspace-list"])
def test_list_query_count_is_flat(world, url_name):
    client = APIClient()
    client.force_authenticate(world.users["platform_admin"])
    counts = []
    for rows in (20, 100):
        for _ in range(rows):
            member(UserFactory(organization=world.org), "viewer", world.ws)
            WorkspaceFactory(organization=world.org)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse(url_name), {"page_size": rows})
        assert response.status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1], counts
