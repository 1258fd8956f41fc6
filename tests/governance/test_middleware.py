"""Request id, security headers, and the ledger record of a refused sensitive action."""

from __future__ import annotations

from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent


def test_request_id_is_kept_when_well_formed_and_replaced_otherwise(client, db):
    response = client.get(reverse("healthz"), HTTP_X_REQUEST_ID="abc12345-trace")
    assert response["X-Request-ID"] == "abc12345-trace"
    response = client.get(reverse("healthz"), HTTP_X_REQUEST_ID="<script>alert(1)</script>")
    assert response["X-Request-ID"] != "<script>alert(1)</script>"
    assert len(response["X-Request-ID"]) == 32


def test_security_headers(client, db):
    response = client.get(reverse("account_login"))
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_refused_sensitive_action_is_in_the_ledger(world):
    """An officer who tries to remove a member gets 403, and the ledger says who tried what."""
    client = APIClient()
    client.force_authenticate(world.users["compliance_officer"])
    membership = world.memberships["viewer"]
    response = client.delete(
        reverse("membership-detail", args=[membership.pk]), HTTP_X_REQUEST_ID="req-denied-1"
    )
    assert response.status_code == 403
    event = AuditEvent.objects.get(action="access.denied")
    assert event.outcome == "denied"
    assert event.actor_id == world.users["compliance_officer"].pk
    assert event.data["action"] == "membership.manage"
    assert event.request_id == "req-denied-1"
    assert event.data["reasons"]


def test_admin_refusal_is_recorded_too(world, client):
    client.force_login(world.users["auditor"])
    url = reverse("admin:tenancy_membership_delete", args=[world.memberships["viewer"].pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    event = AuditEvent.objects.get(action="access.denied")
    assert event.target_id == str(world.memberships["viewer"].pk)
    assert event.workspace_id == world.ws.pk


def test_a_permitted_view_records_no_denial(world, client):
    client.force_login(world.users["workspace_owner"])
    assert client.get(reverse("admin:tenancy_membership_changelist")).status_code == 200
    assert not AuditEvent.objects.filter(action="access.denied").exists()


def test_home_lists_my_workspaces(world, client):
    client.force_login(world.users["workflow_builder"])
    body = client.get(reverse("home")).content.decode()
    assert "Ops EU" in body
    assert "Workflow builder" in body
    assert "Globex" not in body
    assert "control panel" not in body


def _meta_request(settings, remote, forwarded=None, country=None):
    from django.test import RequestFactory

    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "2001:db8:ffff::/48"]
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    if country is not None:
        extra["HTTP_X_CLIENT_COUNTRY"] = country
    return RequestFactory().get("/", **extra)


def test_the_client_address_is_believed_from_trusted_proxies_only(settings):
    """GIVEN TRUSTED_PROXIES WHEN a request comes through them THEN the nearest untrusted hop of
    X-Forwarded-For is the client; from any other peer the header is ignored."""
    from governance.core.middleware import client_ip

    assert (
        client_ip(_meta_request(settings, "10.1.1.1", "203.0.113.5, 198.51.100.7, 10.2.2.2"))
        == "198.51.100.7"
    )
    assert client_ip(_meta_request(settings, "2001:db8:ffff::1", "2001:db8:1::9")) == "2001:db8:1::9"
    assert client_ip(_meta_request(settings, "198.51.100.9", "203.0.113.5")) == "198.51.100.9"
    assert client_ip(_meta_request(settings, "10.1.1.1", "not-an-address")) == "10.1.1.1"
    assert client_ip(_meta_request(settings, "10.1.1.1")) == "10.1.1.1"


def test_the_country_comes_only_from_a_trusted_proxy_and_must_be_two_letters(settings):
    """GIVEN the country header WHEN it comes from a trusted proxy THEN a two-letter code is taken
    (upper-cased); anything else, or from another peer, is no country."""
    from governance.core.middleware import client_country

    assert client_country(_meta_request(settings, "10.1.1.1", "203.0.113.5", country="fr")) == "FR"
    assert client_country(_meta_request(settings, "10.1.1.1", "203.0.113.5", country="FRA")) is None
    assert client_country(_meta_request(settings, "10.1.1.1", "203.0.113.5", country="F1")) is None
    assert client_country(_meta_request(settings, "198.51.100.9", country="FR")) is None


def _console_output(emit) -> str:
    """What the configured console handler (with its filters) writes while ``emit`` runs."""
    import io
    import logging

    handler = next(h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler and h.filters)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        emit()
    finally:
        handler.setStream(previous)
    return stream.getvalue()


def test_a_refused_request_is_logged_as_one_line_with_its_reason(rf):
    """GIVEN a request refused with PermissionDenied WHEN Django logs the 403 THEN the console has
    one line with the path and the reason, and no traceback; a server error keeps its traceback."""
    from django.core.exceptions import PermissionDenied
    from django.http import HttpResponse
    from django.utils.log import log_response

    request = rf.get("/admin/secret/")

    def refused():
        try:
            raise PermissionDenied("you may not view this workspace")
        except PermissionDenied as error:
            log_response(
                "Forbidden (Permission denied): %s", request.path,
                response=HttpResponse(status=403), request=request, exception=error,
            )  # fmt: skip

    output = _console_output(refused)
    assert "Forbidden (Permission denied): /admin/secret/ (you may not view this workspace)" in output
    assert "Traceback" not in output
    assert output.count("\n") == 1

    def failed():
        try:
            raise RuntimeError("boom")
        except RuntimeError as error:
            log_response(
                "Internal Server Error: %s", request.path,
                response=HttpResponse(status=500), request=request, exception=error,
            )  # fmt: skip

    assert "Traceback" in _console_output(failed)


def test_every_page_names_the_icon_and_favicon_ico_finds_it(client, db):
    """GIVEN a browser WHEN it opens a page of the portal's layout or the control panel, or asks for
    /favicon.ico THEN the page links the icon and /favicon.ico redirects to it (no 404 per page)."""
    icon = client.get("/favicon.ico")
    assert icon.status_code == 302
    assert icon["Location"].endswith(".svg")
    from django.template.loader import render_to_string

    assert 'rel="icon"' in client.get(reverse("admin:login")).content.decode()
    assert 'rel="icon"' in render_to_string("base.html")
