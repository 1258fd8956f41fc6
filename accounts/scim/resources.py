"""SCIM Users and Groups as JSON: how our rows look to an identity provider, and what its
documents may change (attribute by attribute, with the type of each checked)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import ScimGroup, User
from accounts.scim.protocol import (
    ENTERPRISE_SCHEMA,
    GROUP_SCHEMA,
    MAX_MEMBERS,
    USER_SCHEMA,
    PatchOperation,
    ScimError,
    as_boolean,
    as_identifier,
    as_object,
    as_string,
    invalid,
)

# Core and enterprise attributes identity providers send by default that the portal does not
# keep: accepted and ignored, so that a default attribute mapping provisions without errors.
IGNORED_USER_ATTRIBUTES = frozenset(
    {
        "schemas",
        "id",
        "meta",
        "title",
        "preferredlanguage",
        "locale",
        "timezone",
        "nickname",
        "profileurl",
        "usertype",
        "emails",
        "phonenumbers",
        "addresses",
        "ims",
        "photos",
        "entitlements",
        "roles",
        "x509certificates",
        "password",
        "groups",
    }
)
_ENTERPRISE = ENTERPRISE_SCHEMA.lower()


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def user_resource(user: User, base_url: str) -> dict[str, Any]:
    """The SCIM representation of ``user``."""
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "id": str(user.pk),
        "externalId": user.scim_external_id or None,
        "userName": user.email,
        "displayName": user.display_name or None,
        "name": {"formatted": user.display_name or user.email},
        "emails": [{"value": user.email, "type": "work", "primary": True}],
        "active": user.is_active,
        ENTERPRISE_SCHEMA: {"department": user.department} if user.department else {},
        "groups": [
            {"value": str(group.pk), "display": group.display_name} for group in user.scim_groups.all()
        ],
        "meta": {
            "resourceType": "User",
            "created": _iso(user.date_joined),
            "location": f"{base_url}/Users/{user.pk}",
        },
    }


def group_resource(group: ScimGroup, base_url: str, *, with_members: bool = True) -> dict[str, Any]:
    """The SCIM representation of ``group`` (members left out on request, as Entra asks)."""
    resource = {
        "schemas": [GROUP_SCHEMA],
        "id": str(group.pk),
        "externalId": group.external_id or None,
        "displayName": group.display_name,
        "meta": {
            "resourceType": "Group",
            "created": _iso(group.created_at),
            "lastModified": _iso(group.updated_at),
            "location": f"{base_url}/Groups/{group.pk}",
        },
    }
    if with_members:
        resource["members"] = [
            {"value": str(user.pk), "display": user.email, "$ref": f"{base_url}/Users/{user.pk}"}
            for user in group.members.all()
        ]
    return resource


# --- Users ----------------------------------------------------------------------------------------


def _user_name(value: Any) -> str:
    email = as_identifier(value, "userName", max_length=254).lower()
    try:
        validate_email(email)
    except ValidationError:
        raise invalid("'userName' must be the person's e-mail address (it is their login).") from None
    return email


def _name_to_display(value: Any) -> str:
    name = as_object(value, "'name'")
    formatted = as_string(name.get("formatted"), "name.formatted", max_length=150)
    given = as_string(name.get("givenName"), "name.givenName", max_length=150)
    family = as_string(name.get("familyName"), "name.familyName", max_length=150)
    return formatted or " ".join(part for part in (given, family) if part)[:150]


def user_document(document: Any, *, creating: bool) -> dict[str, Any]:
    """The changes a full User document (POST or PUT) asks for; unknown attributes are refused,
    those listed in ``IGNORED_USER_ATTRIBUTES`` ignored. ``active`` left out of a PUT leaves the
    account as it is: a replacement that forgot it must not reactivate a deactivated person."""
    document = as_object(document, "The request body")
    schemas = document.get("schemas")
    if schemas is not None and (not isinstance(schemas, list) or USER_SCHEMA not in schemas):
        raise invalid(f"'schemas' must name {USER_SCHEMA}.")
    changes: dict[str, Any] = {"email": _user_name(document.get("userName"))}
    for key, value in document.items():
        name = key.lower()
        if name == "username" or name in IGNORED_USER_ATTRIBUTES:
            continue
        if name == _ENTERPRISE:
            extension = as_object(value, f"'{ENTERPRISE_SCHEMA}'")
            changes["department"] = as_string(extension.get("department"), "department", max_length=100)
        else:
            _user_attribute(changes, name, value, key)
    changes.setdefault("display_name", "")
    changes.setdefault("external_id", "")
    changes.setdefault("department", "")
    if creating:
        changes.setdefault("active", True)
    return changes


def _user_attribute(changes: dict[str, Any], name: str, value: Any, shown: str) -> None:
    """Apply one attribute (a lower-case path) of a document or a PATCH to ``changes``."""
    if name == "username":
        changes["email"] = _user_name(value)
    elif name == "active":
        changes["active"] = as_boolean(value, "active")
    elif name == "externalid":
        changes["external_id"] = as_string(value, "externalId")
    elif name == "displayname":
        changes["display_name"] = as_string(value, "displayName", max_length=150)
    elif name == "name":
        changes.setdefault("display_name", _name_to_display(value))
    elif name in ("name.formatted", "name.givenname", "name.familyname"):
        part = as_string(value, shown, max_length=150)
        parts = changes.setdefault("_name_parts", {})
        parts[name] = part
    elif name in (f"{_ENTERPRISE}:department", "department"):
        changes["department"] = as_string(value, "department", max_length=100)
    elif name.startswith(_ENTERPRISE) or name.split("[")[0].split(".")[0] in IGNORED_USER_ATTRIBUTES:
        return
    else:
        raise ScimError(400, f"The attribute '{shown[:100]}' is not supported.", "invalidPath")


def user_patch(operations: list[PatchOperation]) -> dict[str, Any]:
    """The changes a list of PATCH operations asks for: ``replace``/``add`` of an attribute by
    path (Entra ID's way) or as an object of attributes without a path (Okta's way), and
    ``remove`` of the optional ones."""
    changes: dict[str, Any] = {}
    for operation in operations:
        if operation.op == "remove":
            name = operation.path.lower()
            if name in ("externalid", "displayname", f"{_ENTERPRISE}:department", "department"):
                _user_attribute(changes, name, "", operation.path)
            elif name in ("username", "active"):
                raise ScimError(400, f"'{operation.path}' cannot be removed.", "mutability")
            else:
                _user_attribute(changes, name, None, operation.path)  # refuses unknown paths
            continue
        if operation.path:
            _user_attribute(changes, operation.path.lower(), operation.value, operation.path)
            continue
        for key, value in operation.value.items():
            name = key.lower()
            if name == _ENTERPRISE:
                extension = as_object(value, f"'{ENTERPRISE_SCHEMA}'")
                if "department" in extension:
                    changes["department"] = as_string(extension["department"], "department", max_length=100)
            else:
                _user_attribute(changes, name, value, key)
    return changes


def display_name_of(changes: dict[str, Any], current: str = "") -> dict[str, Any]:
    """Fold ``name.*`` parts into ``display_name`` (formatted wins; else given and family)."""
    parts = changes.pop("_name_parts", None)
    if parts and "display_name" not in changes:
        formatted = parts.get("name.formatted")
        joined = " ".join(p for p in (parts.get("name.givenname"), parts.get("name.familyname")) if p)
        changes["display_name"] = (formatted or joined or current)[:150]
    return changes


# --- Groups ---------------------------------------------------------------------------------------


def member_ids(value: Any) -> list[str]:
    """The ids in a list of ``{"value": "<id>"}`` members."""
    if not isinstance(value, list):
        value = [value]
    if len(value) > MAX_MEMBERS:
        raise ScimError(413, f"At most {MAX_MEMBERS} members per request.", "tooMany")
    ids = []
    for item in value:
        item = as_object(item, "Each member")
        ids.append(as_string(item.get("value"), "members.value", max_length=40, required=True))
    return ids


def group_document(document: Any) -> dict[str, Any]:
    """The changes a full Group document (POST or PUT) asks for."""
    document = as_object(document, "The request body")
    schemas = document.get("schemas")
    if schemas is not None and (not isinstance(schemas, list) or GROUP_SCHEMA not in schemas):
        raise invalid(f"'schemas' must name {GROUP_SCHEMA}.")
    changes = {
        "display_name": as_string(document.get("displayName"), "displayName", required=True),
        "external_id": as_string(document.get("externalId"), "externalId"),
        "members": member_ids(document.get("members") or []),
    }
    unknown = {
        key
        for key in document
        if key.lower() not in ("schemas", "id", "meta", "displayname", "externalid", "members")
    }
    if unknown:
        raise ScimError(400, f"The attribute '{sorted(unknown)[0][:100]}' is not supported.", "invalidPath")
    return changes
