"""The discovery documents (RFC 7643 §5–7, RFC 7644 §4): what this service provider supports,
its resource types and the schemas of the attributes it keeps. Minimal, and true."""

from __future__ import annotations

from typing import Any

from accounts.scim.protocol import (
    ENTERPRISE_SCHEMA,
    GROUP_SCHEMA,
    LIST_SCHEMA,
    MAX_COUNT,
    USER_SCHEMA,
    ScimError,
)

SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


def _attribute(
    name: str,
    kind: str = "string",
    *,
    required: bool = False,
    mutability: str = "readWrite",
    multi: bool = False,
    uniqueness: str = "none",
    sub: list | None = None,
    case_exact: bool = False,
    description: str = "",
) -> dict[str, Any]:
    attribute = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": description or name,
        "required": required,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": uniqueness,
    }
    if kind == "string":
        attribute["caseExact"] = case_exact
    if sub:
        attribute["subAttributes"] = sub
    return attribute


def _schemas() -> list[dict[str, Any]]:
    member = [
        _attribute("value", mutability="immutable"),
        _attribute("display", mutability="readOnly"),
        _attribute("$ref", "reference", mutability="immutable"),
    ]
    user = [
        _attribute(
            "userName", required=True, uniqueness="server", description="The e-mail address; the login."
        ),
        _attribute("externalId", case_exact=True),
        _attribute("displayName"),
        _attribute(
            "name",
            "complex",
            sub=[_attribute("formatted"), _attribute("givenName"), _attribute("familyName")],
        ),
        _attribute(
            "active", "boolean", description="False cuts the person off: sessions end, API tokens go."
        ),
        _attribute(
            "emails",
            "complex",
            multi=True,
            mutability="readOnly",
            sub=[_attribute("value"), _attribute("type"), _attribute("primary", "boolean")],
        ),
        _attribute("groups", "complex", multi=True, mutability="readOnly", sub=member[:2]),
    ]
    group = [
        _attribute("displayName", required=True, uniqueness="server"),
        _attribute("externalId", case_exact=True),
        _attribute("members", "complex", multi=True, sub=member),
    ]
    enterprise = [_attribute("department")]
    return [
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": USER_SCHEMA,
            "name": "User",
            "description": "User account",
            "attributes": user,
        },
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": GROUP_SCHEMA,
            "name": "Group",
            "description": "Group",
            "attributes": group,
        },
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": ENTERPRISE_SCHEMA,
            "name": "EnterpriseUser",
            "description": "Enterprise User",
            "attributes": enterprise,
        },
    ]


def _resource_types() -> list[dict[str, Any]]:
    return [
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User account",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": False}],
        },
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Group",
            "schema": GROUP_SCHEMA,
            "schemaExtensions": [],
        },
    ]


def _service_provider_config() -> dict[str, Any]:
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": "/docs/identity.md#scim-provisioning",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "primary": True,
                "description": "A SCIM token created in the control panel.",
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig"},
    }


def document(kind: str, base_url: str, name: str | None) -> dict[str, Any]:
    """The discovery document ``kind``; ``name`` picks one schema or resource type."""
    if kind == "config":
        return _service_provider_config()
    items = _schemas() if kind == "schemas" else _resource_types()
    key = "Schemas" if kind == "schemas" else "ResourceTypes"
    for item in items:
        item["meta"] = {
            "resourceType": "Schema" if kind == "schemas" else "ResourceType",
            "location": f"{base_url}/{key}/{item['id']}",
        }
    if name is not None:
        for item in items:
            if item["id"] == name:
                return item
        raise ScimError(404, "No such resource.")
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": len(items),
        "startIndex": 1,
        "itemsPerPage": len(items),
        "Resources": items,
    }
