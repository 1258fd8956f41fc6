"""The API's shared plumbing (``governance.core.api`` and ``governance.core.parsers``): paging
that refuses bad values, a size cap on request bodies, JSON for unknown API paths, and a schema
that documents the error answers and the time-of-day format the API really uses."""

from __future__ import annotations

import base64
import re

import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from governance.tenancy.models import Membership


@pytest.fixture
def admin_client(world):
    client = APIClient()
    client.force_authenticate(world.users["platform_admin"])
    return client


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("page_size", ["0", "-1", "201", "99999999999999999999", "ten", "1.5", " 5", ""])
def test_invalid_page_size_is_a_400_naming_the_parameter(admin_client, page_size):
    """GIVEN a list endpoint WHEN page_size is not a whole number from 1 to 200 THEN 400 with a
    field error on page_size (DRF alone would quietly use the default)."""
    response = admin_client.get(reverse("membership-list"), {"page_size": page_size})
    assert response.status_code == 400
    assert response.json() == {"page_size": ["Enter a whole number from 1 to 200."]}


def test_valid_page_size_pages_and_its_cursor_follows(admin_client):
    """GIVEN more memberships than a page WHEN listed two at a time THEN two per page, and the
    next link's cursor leads to the following rows."""
    first = admin_client.get(reverse("membership-list"), {"page_size": "2"})
    assert first.status_code == 200
    assert len(first.json()["results"]) == 2
    following = admin_client.get(first.json()["next"])
    assert following.status_code == 200
    first_ids = {row["id"] for row in first.json()["results"]}
    assert first_ids.isdisjoint(row["id"] for row in following.json()["results"])
    assert Membership.objects.count() > 2


@pytest.mark.parametrize(
    "cursor",
    ["not base64!", _cursor("o=x"), _cursor("r=maybe"), _cursor("p=abc"), _cursor("p=1;DROP")],
    ids=["garbage", "offset", "reverse", "position-text", "position-injection"],
)
def test_invalid_cursor_is_a_400_not_a_404_or_500(admin_client, cursor):
    """GIVEN a forged or mangled cursor (including a position the id column cannot hold) WHEN a
    list is asked for THEN 400 naming the cursor parameter."""
    response = admin_client.get(reverse("membership-list"), {"cursor": cursor})
    assert response.status_code == 400
    assert list(response.json()) == ["cursor"]


def test_unknown_inbox_is_refused(admin_client):
    """GIVEN the changes list WHEN ?inbox= names an inbox that does not exist THEN 400."""
    assert admin_client.get(reverse("api-change-list"), {"inbox": "mine"}).status_code == 200
    response = admin_client.get(reverse("api-change-list"), {"inbox": "theirs"})
    assert response.status_code == 400
    assert "inbox" in response.json()


def test_request_body_over_the_limit_is_a_413(admin_client, settings):
    """GIVEN the upload limit WHEN a JSON body larger than it is posted THEN 413 before it is
    parsed, and nothing is written."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = Membership.objects.count()
    body = '{"user": 1, "role": "viewer", "pad": "' + "x" * 2000 + '"}'
    response = admin_client.generic("POST", reverse("membership-list"), body, content_type="application/json")
    assert response.status_code == 413
    assert "larger than 1000 bytes" in response.json()["detail"]
    assert Membership.objects.count() == before
    small = admin_client.generic("POST", reverse("membership-list"), "{}", content_type="application/json")
    assert small.status_code == 400  # under the limit: parsed, and refused field by field


def test_unknown_api_path_answers_json(admin_client):
    """GIVEN a path under /api/ that matches no route WHEN requested THEN a JSON 404, like every
    other API error (pages keep Django's HTML 404)."""
    response = admin_client.get("/api/v1/changes/0.5/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


@pytest.fixture(scope="module")
def document():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_schema_documents_error_answers_with_the_error_bodies(document):
    """GIVEN the generated schema THEN each operation lists its error answers with the error
    components: a write has 400 (field errors or detail), 401, 403, 413; an object's operation 404;
    every operation 429, since service-account tokens are throttled."""
    decide = document["paths"]["/api/v1/changes/{id}/decide/"]["post"]["responses"]
    assert set(decide) == {"200", "400", "401", "403", "404", "413", "429"}
    assert decide["403"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert decide["400"]["content"]["application/json"]["schema"] == {
        "anyOf": [{"$ref": "#/components/schemas/ValidationErrors"}, {"$ref": "#/components/schemas/Error"}]
    }
    retrieve = document["paths"]["/api/v1/workspaces/{id}/"]["get"]["responses"]
    assert set(retrieve) == {"200", "401", "403", "404", "429"}
    listing = document["paths"]["/api/v1/workspaces/"]["get"]
    assert set(listing["responses"]) == {"200", "400", "401", "403", "429"}
    page_size = next(p for p in listing["parameters"] if p["name"] == "page_size")
    assert page_size["schema"] == {"type": "integer", "minimum": 1, "maximum": 200}
    assert document["components"]["schemas"]["Error"]["required"] == ["detail"]


def test_times_of_day_are_documented_as_the_api_sends_them(document, admin_client, world):
    """GIVEN a workspace's business hours WHEN read over the API THEN the value ("09:00:00", no
    UTC offset) matches the documented pattern, and the schema no longer claims RFC 3339's
    ``format: time`` (which requires an offset)."""
    field = document["components"]["schemas"]["WorkspaceOutput"]["properties"]["business_hours_start"]
    assert "format" not in field
    sent = admin_client.get(reverse("workspace-detail", args=[world.ws.pk])).json()["business_hours_start"]
    assert sent == "09:00:00"
    assert re.match(field["pattern"], sent)
