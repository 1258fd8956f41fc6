"""An oversized form gets a page that says so (413), not a bare 400 or the debug page; the API
keeps its JSON 413."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from workflows.changes.models import Workflow


def _big() -> str:
    return "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)


def test_an_oversized_form_gets_a_page_that_says_so(world, client):
    client.force_login(world.users["workflow_builder"])
    before = Workflow.objects.count()
    response = client.post(
        reverse("workflow-create"),
        f"summary={_big()}",
        content_type="application/x-www-form-urlencoded",
    )
    body = response.content.decode()
    assert response.status_code == 413
    assert "Too much at once" in body
    assert "Nothing was saved" in body
    assert 'href="/workflows/new/"' in body
    assert Workflow.objects.count() == before


@override_settings(DEBUG=True)
def test_in_development_too_it_is_the_page_not_the_debug_page(client):
    response = client.post(
        reverse("account_login"), f"login={_big()}", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert "Too much at once" in response.content.decode()


def test_a_form_within_the_limit_is_untouched(world, client):
    client.force_login(world.users["workflow_builder"])
    response = client.post(reverse("workflow-create"), {"summary": "small"})
    assert response.status_code == 200  # the editor, with its field errors


def test_the_api_answers_an_oversized_body_in_json(world, client):
    client.force_login(world.users["workflow_builder"])
    response = client.post(
        "/api/v1/workflows/",
        "{" + " " * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + "}",
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.django_db(transaction=True)
def test_the_development_server_of_the_quick_start_serves_the_page_too(live_server):
    """``make run`` serves through Django's development server (wsgiref), which refuses
    hop-by-hop headers from the application: the page must not set one, or the 413 becomes a
    500 "A server error occurred". The server reads the unsent rest of the body itself."""
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(live_server.url)
    body = f"login={_big()}".encode()
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.request(
        "POST", "/accounts/login/", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    response = connection.getresponse()
    page = response.read().decode()
    connection.close()
    assert response.status == 413, page[:500]
    assert "Too much at once" in page
