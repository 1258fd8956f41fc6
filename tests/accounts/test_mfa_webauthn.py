"""WebAuthn as a second factor (django-otp-webauthn through our views): a key registered at first
sign-in verifies that session; a later sign-in verifies with an assertion; a forged or replayed
assertion is refused and recorded; malformed input is a clear error."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from django.urls import reverse
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import UserSession
from accounts.sessions import session_ref_of
from audit.models import AuditEvent
from tests.conftest import PASSWORD, mfa_device_for

pytestmark = pytest.mark.no_auto_mfa
HOME = "/"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftKey:
    """A software security key (P-256, "none" attestation): the answers a real key gives."""

    def __init__(self, rp_id: str = "localhost", origin: str = "http://localhost:8000"):
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.rp_id, self.origin, self.sign_count = rp_id, origin, 0

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        ).encode()

    def register(self, options: dict) -> dict:
        numbers = self.private.public_key().public_numbers()
        cose = cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )
        auth_data = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + bytes([0x45])  # user present, user verified, attested credential data
            + struct.pack(">I", self.sign_count)
            + bytes(16)
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + cose
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"])
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64url(attestation),
                "clientDataJSON": b64url(client_data),
                "transports": ["usb"],
            },
            "clientExtensionResults": {},
        }

    def assertion(self, options: dict, *, forge: bool = False) -> dict:
        self.sign_count += 1
        auth_data = (
            hashlib.sha256(self.rp_id.encode()).digest() + bytes([0x05]) + struct.pack(">I", self.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = self.private.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        if forge:
            other = ec.generate_private_key(ec.SECP256R1())
            signature = other.sign(
                auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
            )
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64url(auth_data),
                "clientDataJSON": b64url(client_data),
                "signature": b64url(signature),
            },
            "clientExtensionResults": {},
        }


def signed_in(user) -> Client:
    client = Client()
    assert (
        client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD}).status_code == 302
    )
    return client


def post_json(client, name: str, body=None):
    payload = "" if body is None else json.dumps(body)
    return client.post(reverse(f"otp_webauthn:{name}"), payload, content_type="application/json")


def register(client, key: SoftKey):
    options = post_json(client, "credential-registration-begin")
    assert options.status_code == 200, options.content
    return post_json(client, "credential-registration-complete", key.register(options.json()))


def authenticate(client, key: SoftKey, **kwargs):
    options = post_json(client, "credential-authentication-begin")
    assert options.status_code == 200, options.content
    body = key.assertion(options.json(), **kwargs)
    return post_json(client, "credential-authentication-complete", body), body


def session_row(client) -> UserSession:
    return UserSession.objects.get(session_ref=session_ref_of(client.session.session_key))


def test_a_key_registered_at_first_sign_in_enrols_and_verifies_the_session(world):
    """GIVEN a person without a device WHEN they register a security key THEN it is enrolled
    (recorded), the session is verified with a new key on the same record, pages open."""
    viewer = world.users["viewer"]
    client = signed_in(viewer)
    before = session_row(client)
    key = SoftKey()
    response = register(client, key)
    assert response.status_code == 200, response.content
    credential = WebAuthnCredential.objects.get(user=viewer)
    assert response.json() == {"id": credential.pk}
    assert client.get(HOME).status_code == 200
    row = session_row(client)
    assert row.pk == before.pk
    assert row.mfa_verified_at is not None
    enrolled = AuditEvent.objects.get(action="mfa.enrolled")
    assert enrolled.data["method"] == "webauthn"
    assert AuditEvent.objects.get(action="mfa.verified").data["method"] == "webauthn"


def test_a_later_sign_in_verifies_with_the_key(world):
    """GIVEN a registered key WHEN the person signs in again THEN pages ask for verification; a
    signed assertion verifies the session (recorded) and the key's signature counter moves on."""
    viewer = world.users["viewer"]
    key = SoftKey()
    assert register(signed_in(viewer), key).status_code == 200
    client = signed_in(viewer)
    assert client.get(HOME)["Location"].startswith(reverse("account-mfa-verify"))
    page = client.get(reverse("account-mfa-verify"))
    assert "passkey-verification-button" in page.content.decode()
    assert "/static/django_otp_webauthn/otp_webauthn_auth.js" in page.content.decode()
    response, _ = authenticate(client, key)
    assert response.status_code == 200, response.content
    assert response.json()["redirect_url"] == reverse("home")
    assert client.get(HOME).status_code == 200
    assert WebAuthnCredential.objects.get(user=viewer).sign_count == 1
    assert AuditEvent.objects.filter(action="mfa.verified", data__method="webauthn").count() == 2


def test_forged_and_replayed_assertions_are_refused_and_recorded(world):
    """GIVEN a registered key WHEN an assertion is signed by another key, or a good assertion of
    one session is sent again in another THEN both are refused, recorded, nothing verified."""
    viewer = world.users["viewer"]
    key = SoftKey()
    assert register(signed_in(viewer), key).status_code == 200
    forged_client = signed_in(viewer)
    forged, _ = authenticate(forged_client, key, forge=True)
    assert forged.status_code == 422
    assert forged_client.get(HOME).status_code == 302

    first = signed_in(viewer)
    ok, body = authenticate(first, key)
    assert ok.status_code == 200
    replaying = signed_in(viewer)
    assert post_json(replaying, "credential-authentication-begin").status_code == 200
    replayed = post_json(replaying, "credential-authentication-complete", body)
    assert replayed.status_code == 422
    assert replaying.get(HOME).status_code == 302
    assert session_row(replaying).mfa_verified_at is None
    reasons = list(AuditEvent.objects.filter(action="mfa.failed").values_list("data__reason", flat=True))
    assert reasons == ["bad_assertion", "bad_assertion"]


def test_an_enrolled_person_cannot_add_a_key_before_verifying(world):
    """GIVEN a person with an authenticator app who only typed the password WHEN they try to
    register a key THEN it is refused (else a stolen password would add the thief's key)."""
    builder = world.users["workflow_builder"]
    mfa_device_for(builder)
    client = signed_in(builder)
    response = post_json(client, "credential-registration-begin")
    assert response.status_code == 403
    assert not WebAuthnCredential.objects.filter(user=builder).exists()


@pytest.mark.parametrize("body", ["not json", json.dumps({"id": "x"}), json.dumps([1, 2])])
def test_malformed_ceremony_input_is_a_clear_error_not_a_crash(world, body):
    """GIVEN a ceremony begun WHEN the answer is malformed THEN a 4xx with a reason, no 500."""
    viewer = world.users["viewer"]
    client = signed_in(viewer)
    post_json(client, "credential-registration-begin")
    url = reverse("otp_webauthn:credential-registration-complete")
    response = client.post(url, body, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert "detail" in response.json()


def test_anonymous_visitors_cannot_begin_a_ceremony(db):
    """GIVEN nobody signed in WHEN a ceremony is begun THEN it is refused (no passwordless login)."""
    client = Client()
    assert post_json(client, "credential-authentication-begin").status_code in (401, 403)
    assert post_json(client, "credential-registration-begin").status_code in (401, 403)
