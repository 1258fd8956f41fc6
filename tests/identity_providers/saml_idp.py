"""The SAML identity provider of the tests: pysaml2's ``Server`` behind a small WSGI app on
127.0.0.1, signing responses and assertions with RSA-SHA256 under a key made at test time.

GET /sso/redirect takes the portal's AuthnRequest (HTTP-Redirect) and shows a sign-in form;
POST /sso/login answers with a signed response, auto-posted to the portal's ACS (HTTP-POST).
``respond`` builds a response without the browser, for the attack tests.
"""

from __future__ import annotations

import html
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

from tests.identity_providers.common import free_port, pem_private, rsa_key, self_signed_cert
from tests.tools import unavailable

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
MFA_CONTEXT = "http://schemas.microsoft.com/claims/multipleauthn"
PASSWORD_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"

ACCOUNTS = {
    "grace": {"password": "grace-idp-pass", "email": "grace@acme.example", "groups": ["portal-builders"],
              "context": MFA_CONTEXT},
    "hal": {"password": "hal-idp-pass", "email": "hal@acme.example", "groups": ["portal-viewers"],
            "context": PASSWORD_CONTEXT},
}  # fmt: skip

SP_METADATA = """<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">
<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="false"
 WantAssertionsSigned="true">
<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
{services}
</md:SPSSODescriptor></md:EntityDescriptor>"""
ACS = '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{url}" index="{index}"/>'


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@dataclass
class SamlIdP:
    base: str
    entity_id: str
    cert_pem: str
    server: object
    httpd: object
    workdir: tempfile.TemporaryDirectory
    pending: dict = field(default_factory=dict)

    @property
    def sso_url(self) -> str:
        return f"{self.base}/sso/redirect"

    def parse_request(self, saml_request: str):
        from saml2 import BINDING_HTTP_REDIRECT

        return self.server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT).message

    def respond(self, request, login: str, *, audience: str | None = None, lifetime_minutes: int = 5) -> str:
        """A signed SAMLResponse (base64) answering ``request`` for ``login``; ``audience`` makes it
        for another service provider (the destination stays the portal's ACS)."""
        import base64

        from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID

        account = ACCOUNTS[login]
        args = self.server.response_args(request)
        if audience is not None:
            args["sp_entity_id"] = audience
        identity = {"email": [account["email"]], "groups": account["groups"]}
        response = self.server.create_authn_response(
            identity, userid=account["email"], name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=account["email"]),
            authn={"class_ref": account["context"], "authn_auth": self.entity_id}, sign_response=True,
            sign_assertion=True, sign_alg=RSA_SHA256, digest_alg=SHA256, **args,
        )  # fmt: skip
        return base64.b64encode(str(response).encode()).decode()

    def app(self, environ, start_response):
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        try:
            if path == "/sso/redirect" and method == "GET":
                query = parse_qs(environ.get("QUERY_STRING", ""))
                key = secrets.token_urlsafe(16)
                self.pending[key] = (
                    self.parse_request(query["SAMLRequest"][0]),
                    query.get("RelayState", [""])[0],
                )
                return _page(start_response, _login_form(key))
            if path == "/sso/login" and method == "POST":
                size = int(environ.get("CONTENT_LENGTH") or 0)
                form = parse_qs(environ["wsgi.input"].read(size).decode())
                request, relay = self.pending[form["key"][0]]
                login = form.get("login", [""])[0]
                account = ACCOUNTS.get(login)
                if account is None or account["password"] != form.get("password", [""])[0]:
                    return _page(start_response, _login_form(form["key"][0], "Wrong username or password."))
                self.pending.pop(form["key"][0])
                return _page(start_response, _auto_post(request.assertion_consumer_service_url,
                                                        self.respond(request, login), relay))  # fmt: skip
        except Exception as error:  # the test reads the answer; the IdP itself never crashes
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [f"{type(error).__name__}: {error}".encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]


def _page(start_response, body: str):
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [body.encode()]


def _login_form(key: str, error: str = "") -> str:
    alert = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    return (f"<!doctype html><html><head><title>Test SAML IdP</title></head><body><h1>Test SAML IdP</h1>{alert}"
            f'<form method="post" action="/sso/login"><input type="hidden" name="key" value="{html.escape(key)}">'
            '<label>Username <input name="login"></label><label>Password <input name="password" type="password">'
            '</label><button type="submit">Sign in at the SAML IdP</button></form></body></html>')  # fmt: skip


def _auto_post(action: str, saml_response: str, relay: str) -> str:
    return (f'<!doctype html><html><body onload="document.forms[0].submit()"><form method="post" '
            f'action="{html.escape(action)}"><input type="hidden" name="SAMLResponse" value="{html.escape(saml_response)}">'
            f'<input type="hidden" name="RelayState" value="{html.escape(relay)}">'
            '<button type="submit">Continue</button></form></body></html>')  # fmt: skip


def start(
    sp_entity_id: str, acs_urls: list[str], *, other_sp: str = "https://other-service.example/sp"
) -> SamlIdP:
    """Start the IdP; it knows the portal (``sp_entity_id`` with its ACS URLs) and one other SP."""
    xmlsec = shutil.which("xmlsec1")
    if xmlsec is None:
        unavailable("xmlsec1 is not installed: the SAML IdP tests need it (Debian: apt-get install xmlsec1)")
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.config import IdPConfig
    from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_EMAILADDRESS
    from saml2.server import Server

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    workdir = tempfile.TemporaryDirectory()
    key = rsa_key()
    cert = self_signed_cert(key, "test-saml-idp")
    Path(workdir.name, "idp.key").write_bytes(pem_private(key))
    Path(workdir.name, "idp.crt").write_bytes(cert)
    services = "\n".join(ACS.format(url=url, index=index) for index, url in enumerate(acs_urls))
    config = IdPConfig().load({
        "entityid": f"{base}/metadata",
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [(f"{base}/sso/redirect", BINDING_HTTP_REDIRECT)]},
            "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                   "name_form": NAME_FORMAT_BASIC}},
            "want_authn_requests_signed": False,
        }},
        "key_file": str(Path(workdir.name, "idp.key")),
        "cert_file": str(Path(workdir.name, "idp.crt")),
        "xmlsec_binary": xmlsec,
        "metadata": {"inline": [SP_METADATA.format(entity=sp_entity_id, services=services),
                                SP_METADATA.format(entity=other_sp, services=services)]},
    })  # fmt: skip
    idp = SamlIdP(base, f"{base}/metadata", cert.decode(), Server(config=config), None, workdir)
    idp.httpd = make_server("127.0.0.1", port, idp.app, handler_class=_Quiet)
    threading.Thread(target=idp.httpd.serve_forever, daemon=True).start()
    return idp


def stop(idp: SamlIdP) -> None:
    idp.httpd.shutdown()
    idp.httpd.server_close()
    idp.workdir.cleanup()
