"""SCIM helpers for the tests: a token for an organisation of the test world, and a client
that speaks application/scim+json with it."""

from __future__ import annotations

import json

from django.test import Client

from accounts.scim.tokens import scim_token_create

BASE = "/scim/v2"


class ScimClient:
    """A test client sending ``Authorization: Bearer <token>`` and SCIM JSON bodies."""

    def __init__(self, token: str | None):
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}

    def call(self, method: str, path: str, body=None, *, raw: bytes | None = None, **extra):
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        handler = getattr(self.client, method.lower())
        return handler(
            f"{BASE}{path}", data=data, content_type="application/scim+json", **self.headers, **extra
        )

    def get(self, path: str, **params):
        return self.client.get(f"{BASE}{path}", params, **self.headers)

    def post(self, path: str, body=None, **kwargs):
        return self.call("post", path, body, **kwargs)

    def put(self, path: str, body=None, **kwargs):
        return self.call("put", path, body, **kwargs)

    def patch(self, path: str, body=None, **kwargs):
        return self.call("patch", path, body, **kwargs)

    def delete(self, path: str):
        return self.client.delete(f"{BASE}{path}", **self.headers)


def scim_token_for(world, organization=None) -> str:
    """A fresh SCIM token of ``organization`` (the world's own by default), made by its administrator."""
    organization = organization or world.org
    admin = world.users["platform_admin"] if organization == world.org else _foreign_admin(world)
    return scim_token_create(actor=admin, organization=organization, name="Test IdP").plaintext


def _foreign_admin(world):
    from tests.conftest import member
    from tests.factories import UserFactory

    admin = UserFactory(organization=world.foreign_org, email="admin@globex.test")
    member(admin, "platform_admin", organization=world.foreign_org)
    return admin


def scim_client(world, organization=None) -> ScimClient:
    return ScimClient(scim_token_for(world, organization))


def new_user(name: str = "ada", **extra) -> dict:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"{name}@acme.test",
        "externalId": f"ext-{name}",
        "name": {"givenName": name.title(), "familyName": "Lovelace"},
        "active": True,
        **extra,
    }


def scim_error(response) -> dict:
    """The SCIM error document of ``response`` (checked to be one)."""
    assert response["Content-Type"].startswith("application/scim+json"), response["Content-Type"]
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], body
    assert body["status"] == str(response.status_code)
    return body


def scim_objects_of(world) -> dict[str, dict[str, object]]:
    """A SCIM token and a SCIM group in each organisation of the world (made once per world)."""
    objects = getattr(world, "scim_objects", None)
    if objects is not None:
        return objects
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import ScimGroup, ScimToken

    tokens, groups = {}, {}
    for scope, organization in (("own", world.org), ("foreign", world.foreign_org)):
        tokens[scope] = ScimToken.objects.create(organization=organization, name=f"{scope} IdP", prefix=f"{scope}0000"[:8],
                                                 digest="0" * 64, expires_at=timezone.now() + timedelta(days=30))  # fmt: skip
        groups[scope] = ScimGroup.objects.create(organization=organization, display_name=f"{scope} engineers")
    world.scim_objects = {"accounts.scimtoken": tokens, "accounts.scimgroup": groups}
    return world.scim_objects
