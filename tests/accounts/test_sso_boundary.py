"""Identity providers behind the network boundary: an issuer on an internal or metadata address, or
over plain http, is refused with a field error in the control panel and the service; one stored
anyway (straight into the database) is never fetched by an anonymous sign-in, which gets a clear
redirect with a message; allauth's fetches and their redirects are checked after DNS."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
import requests
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import IdentityProvider, ProviderKind
from accounts.sso import services
from accounts.sso.adapter import social_app_for
from accounts.sso.fetch import BoundaryRefusedError, boundary_session
from audit.models import AuditEvent
from tests.conftest import build_world

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

REFUSED_ISSUERS = [
    ("http://127.0.0.1:8199/issuer", "Only https:// endpoints are allowed."),
    ("http://169.254.169.254/latest/meta-data", "Only https:// endpoints are allowed."),
    ("http://[::ffff:127.0.0.1]:8199/x", "Only https:// endpoints are allowed."),
    ("http://idp.acme.example/", "Only https:// endpoints are allowed."),
    ("https://127.0.0.1:8199/issuer", "127.0.0.1 is a loopback address"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a cloud metadata address"),
    ("https://[::ffff:127.0.0.1]:8199/x", "(that is 127.0.0.1) is a loopback address"),
    ("https://[64:ff9b::a9fe:a9fe]/", "a cloud metadata address"),
    ("https://10.1.2.3/realms/acme", "10.1.2.3 is a private address"),
    ("https://metadata.google.internal/", "cloud metadata service"),
]


@pytest.fixture
def world():
    return build_world()


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with a discovery-like JSON document and remembers the path."""

    def do_GET(self):
        self.server.seen.append(self.path)
        if self.path == "/bounce":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"issuer": "http://127.0.0.1/"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def loopback_server() -> Iterator[http.server.HTTPServer]:
    """A plain HTTP server on 127.0.0.1 that records every request it receives."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _create(world, issuer: str) -> IdentityProvider:
    return services.identity_provider_create(
        actor=world.users["platform_admin"], organization=world.org, kind=ProviderKind.OIDC,
        name="Acme login", slug="acme-oidc", oidc_issuer=issuer, oidc_client_id="portal", allowed_domains=["acme.test"],
    )  # fmt: skip


@pytest.mark.parametrize(("issuer", "reason"), REFUSED_ISSUERS)
def test_the_control_panel_refuses_internal_issuers_with_a_field_error(world, client, issuer, reason):
    """GIVEN a platform administrator in the control panel WHEN they add an OIDC provider whose
    issuer is internal, a metadata address (in any spelling) or plain http THEN the form answers
    with an error on the issuer field, and no provider is saved."""
    client.force_login(world.users["platform_admin"])
    response = client.post(
        reverse("admin:accounts_identityprovider_add"),
        {"name": "Acme login", "slug": "acme-oidc", "kind": "oidc", "enabled": "on", "oidc_issuer": issuer,
         "oidc_client_id": "portal", "groups_claim": "groups", "allowed_domains": "acme.test"},
    )  # fmt: skip
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"oidc_issuer"}
    assert reason in " ".join(errors["oidc_issuer"])
    assert not IdentityProvider.objects.exists()


def test_the_control_panel_refuses_an_internal_issuer_when_editing(world, client):
    """GIVEN a provider with a public issuer WHEN the administrator changes it to a loopback one
    THEN the change is refused on the issuer field and the stored issuer stays."""
    provider = _create(world, "https://idp.acme.example/")
    client.force_login(world.users["platform_admin"])
    response = client.post(
        reverse("admin:accounts_identityprovider_change", args=[provider.pk]),
        {"name": "Acme login", "enabled": "on", "oidc_issuer": "https://[::1]:8199/issuer",
         "oidc_client_id": "portal", "groups_claim": "groups", "allowed_domains": "acme.test"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "::1 is a loopback address" in " ".join(response.context["adminform"].form.errors["oidc_issuer"])
    provider.refresh_from_db()
    assert provider.oidc_issuer == "https://idp.acme.example/"


@pytest.mark.parametrize(("issuer", "reason"), REFUSED_ISSUERS)
def test_the_service_refuses_internal_issuers(world, issuer, reason):
    """GIVEN any path that saves through the service (API, import, control panel) WHEN the issuer is
    refused by the boundary THEN a field error on ``oidc_issuer`` is raised and nothing is saved."""
    with pytest.raises(ValidationError) as refused:
        _create(world, issuer)
    assert reason in " ".join(refused.value.message_dict["oidc_issuer"])
    assert not IdentityProvider.objects.exists()
    assert not AuditEvent.objects.filter(action="identity_provider.created").exists()


def test_the_model_refuses_an_internal_issuer_on_full_clean(world):
    """GIVEN an unsaved provider with a metadata issuer WHEN it is validated as a model THEN the
    issuer field is refused (the model guards every path that validates, not only the form)."""
    provider = IdentityProvider(organization=world.org, kind=ProviderKind.OIDC, name="X", slug="x",
                                oidc_issuer="https://169.254.169.254/", oidc_client_id="portal")  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        provider.full_clean(exclude=["oidc_client_secret"])
    assert "cloud metadata address" in " ".join(refused.value.message_dict["oidc_issuer"])


def test_an_issuer_whose_name_does_not_resolve_yet_may_be_saved(world, monkeypatch):
    """GIVEN an issuer host name that does not resolve at configuration time WHEN it is saved THEN it
    is accepted (the IdP may not be reachable yet); every fetch resolves and checks it again."""
    from governance.core.outbound import boundary

    def unresolvable(host, port):
        raise OSError("no such host")

    monkeypatch.setattr(boundary, "system_resolver", unresolvable)
    assert _create(world, "https://idp.not-yet.example/").oidc_issuer == "https://idp.not-yet.example/"


def test_an_issuer_whose_name_resolves_inside_is_refused(world, monkeypatch):
    """GIVEN a host name that resolves to a private address WHEN it is saved as an issuer THEN it is
    refused with the address it resolves to."""
    from governance.core.outbound import boundary

    monkeypatch.setattr(boundary, "system_resolver", lambda host, port: ["10.9.8.7"])
    with pytest.raises(ValidationError) as refused:
        _create(world, "https://sso.acme.example/")
    assert "sso.acme.example resolves to 10.9.8.7, which is a private address" in " ".join(
        refused.value.message_dict["oidc_issuer"]
    )


@pytest.mark.parametrize(
    "template",
    ["http://127.0.0.1:{port}/issuer", "https://127.0.0.1:{port}/issuer", "http://[::ffff:127.0.0.1]:{port}/x",
     "https://0x7f000001:{port}/x"],
)  # fmt: skip
def test_an_anonymous_sign_in_never_fetches_an_issuer_stored_past_the_checks(world, client, loopback_server,
                                                                             template):  # fmt: skip
    """GIVEN an issuer on loopback written straight into the database (past form and service) and a
    server listening there WHEN an anonymous visitor presses the provider's sign-in button THEN
    the server receives no request, the visitor is sent back to the sign-in page with a message
    (not a 500), and the refused sign-in is in the ledger."""
    issuer = template.format(port=loopback_server.server_address[1])
    IdentityProvider.objects.create(organization=world.org, kind=ProviderKind.OIDC, name="Acme login",
                                    slug="acme-oidc", oidc_issuer=issuer, oidc_client_id="portal", allowed_domains=["acme.test"])  # fmt: skip
    response = client.post("/accounts/oidc/acme-oidc/login/")
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")
    assert loopback_server.seen == []
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Single sign-on is unavailable: the identity provider's address is not allowed."
    ]
    failed = AuditEvent.objects.get(action="sso.login_failed")
    assert failed.data["provider"] == "acme-oidc"
    assert failed.data["reason"].startswith("oidc: refused by the network boundary")
    assert failed.organization_id == world.org.pk


def test_an_allow_listed_issuer_is_fetched(world, client, loopback_server, settings):
    """GIVEN the operator allow-lists 127.0.0.1 (plain http too) WHEN the sign-in starts THEN the
    discovery document is fetched from that server (the allow-list is what lifts the refusal)."""
    settings.OUTBOUND_ALLOW_LIST = ["127.0.0.1"]
    settings.OUTBOUND_ALLOW_PLAIN_HTTP = ["127.0.0.1"]
    issuer = f"http://127.0.0.1:{loopback_server.server_address[1]}/issuer"
    _create(world, issuer)
    response = client.post("/accounts/oidc/acme-oidc/login/")
    assert loopback_server.seen == ["/issuer/.well-known/openid-configuration"]
    # The test server's document lacks the endpoints: refused with a message, not a 500.
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Single sign-on is unavailable: the identity provider's configuration could not be read."
    ]
    assert (
        "lacks authorization_endpoint, token_endpoint"
        in AuditEvent.objects.get(action="sso.login_failed").data["reason"]
    )


def _organisation_allows(world, *destinations: str) -> None:
    """The organisation's own allow-list rules (``NetworkAllowRule``), as its administrators add them."""
    from workflows.integrations.models import NetworkAllowRule

    for destination in destinations:
        NetworkAllowRule.objects.create(
            organization=world.org,
            destination=destination,
            reason="on-premises",
            created_by=world.users["platform_admin"],
        )


@pytest.mark.parametrize(
    ("destinations", "template"),
    [(["127.0.0.1/32"], "https://127.0.0.1:{port}/issuer"), (["127.0.0.0/8"], "http://127.0.0.1:{port}/issuer"),
     (["169.254.169.254/32"], "https://169.254.169.254/latest/meta-data")],
)  # fmt: skip
def test_an_organisations_allow_rules_never_lift_a_refusal_for_an_anonymous_sign_in(
    world, client, loopback_server, settings, destinations, template
):
    """GIVEN the organisation's own allow-list rules naming loopback or the metadata address (the
    operator's list empty, plain http allowed to 127.0.0.1) and an issuer there WHEN the
    administrator saves it THEN it is refused on the issuer field; WHEN it is stored anyway and an
    anonymous visitor starts the sign-in THEN nothing is fetched: for fetches an anonymous
    request triggers only the operator's OUTBOUND_ALLOW_LIST lifts a refusal."""
    settings.OUTBOUND_ALLOW_LIST = []
    settings.OUTBOUND_ALLOW_PLAIN_HTTP = ["127.0.0.1"]
    _organisation_allows(world, *destinations)
    issuer = template.format(port=loopback_server.server_address[1])
    with pytest.raises(ValidationError) as refused:
        _create(world, issuer)
    assert "oidc_issuer" in refused.value.message_dict
    IdentityProvider.objects.create(organization=world.org, kind=ProviderKind.OIDC, name="Acme login",
                                    slug="acme-oidc", oidc_issuer=issuer, oidc_client_id="portal", allowed_domains=["acme.test"])  # fmt: skip
    response = client.post("/accounts/oidc/acme-oidc/login/")
    assert response.status_code == 302
    assert loopback_server.seen == []
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Single sign-on is unavailable: the identity provider's address is not allowed."
    ]


def test_allauth_fetches_check_every_redirect(loopback_server, settings):
    """GIVEN an allow-listed server that redirects to the metadata address WHEN allauth's session
    fetches from it THEN the redirect is refused before anything is sent there."""
    settings.OUTBOUND_ALLOW_LIST = ["127.0.0.1"]
    settings.OUTBOUND_ALLOW_PLAIN_HTTP = ["127.0.0.1"]
    session = boundary_session(organization_id=None, timeout=5)
    url = f"http://127.0.0.1:{loopback_server.server_address[1]}"
    assert session.get(f"{url}/ok").json() == {"issuer": "http://127.0.0.1/"}
    with pytest.raises(BoundaryRefusedError, match=r"\(hop 1\) was refused: Only https:// endpoints"):
        session.get(f"{url}/bounce")
    assert loopback_server.seen == ["/ok", "/bounce"]


def test_allauth_fetches_refuse_internal_addresses_with_a_requests_error():
    """GIVEN no allow-list WHEN allauth's session is asked for the metadata service THEN it raises a
    ``requests`` error (which allauth turns into a sign-in error), never connecting."""
    session = boundary_session(organization_id=None, timeout=5)
    with pytest.raises(requests.RequestException, match="cloud metadata address"):
        session.get("https://169.254.169.254/latest/meta-data")


def test_the_socialaccount_adapter_hands_allauth_the_boundary_session():
    """GIVEN allauth's adapter WHEN it is asked for the session it fetches with THEN every scheme it
    may fetch goes through the boundary's transport."""
    from allauth.socialaccount.adapter import get_adapter

    from accounts.sso.fetch import BoundaryTransport

    session = get_adapter().get_requests_session()
    assert isinstance(session.get_adapter("https://idp.example/"), BoundaryTransport)
    assert isinstance(session.get_adapter("http://idp.example/"), BoundaryTransport)


def test_saml_providers_never_fetch_metadata(world):
    """GIVEN a SAML provider WHEN allauth's app is built from it THEN it carries no metadata URL, so
    allauth never fetches IdP metadata server-side (the entity id, SSO URL and certificate are set
    in the control panel)."""
    from tests.identity_providers.common import rsa_key, self_signed_cert

    provider = services.identity_provider_create(
        actor=world.users["platform_admin"], organization=world.org, kind=ProviderKind.SAML, name="S",
        slug="acme-saml", saml_idp_entity_id="https://idp.acme.example/saml",
        saml_idp_sso_url="https://idp.acme.example/sso", saml_idp_x509_cert=self_signed_cert(rsa_key(), "idp").decode(), allowed_domains=["acme.test"],
    )  # fmt: skip
    app = social_app_for(provider, with_secret=False)
    assert "metadata_url" not in app.settings["idp"]
