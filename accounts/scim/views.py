"""The SCIM 2.0 endpoints under ``/scim/v2/``.

Plain Django views rather than DRF: the only credential they take is a SCIM token in
``Authorization: Bearer``; no session is read for authentication, created or touched (no
Set-Cookie), and only these token-authenticated views are exempt from CSRF (a browser's
ambient cookies authenticate nothing here). Every answer is ``application/scim+json``; every
refusal is a SCIM error document, whatever the input.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from accounts.models import ScimGroup, User
from accounts.scim import discovery, services
from accounts.scim.principal import SCIM_TOKENS
from accounts.scim.protocol import (
    CONTENT_TYPE,
    MAX_BODY_BYTES,
    ScimError,
    list_response,
    parse_filter,
    parse_paging,
    parse_patch,
    refuse_unstorable_text,
)
from accounts.scim.resources import (
    display_name_of,
    group_document,
    group_resource,
    user_document,
    user_patch,
    user_resource,
)
from accounts.scim.tokens import (
    SCIM_THROTTLE,
    ScimAuthenticationError,
    scim_auth_failure_record,
    scim_lockout_record,
    scim_token_authenticate,
)
from governance.access.decision import AccessDenied
from governance.access.queries import restrict
from governance.core.context import current_context
from governance.core.middleware import client_ip

logger = logging.getLogger("accounts.scim")


def scim_response(body: Any, status: int = 200, headers: dict | None = None) -> HttpResponse:
    content = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
    response = HttpResponse(content, status=status, content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class ScimThrottledError(ScimError):
    """Too many failed token attempts from this address or with this token prefix: 429."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, f"Too many failed SCIM token attempts; try again in {retry_after} seconds.")
        self.retry_after = retry_after


def _error(error: ScimError) -> HttpResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if error.status == 401 else None
    if isinstance(error, ScimThrottledError):
        headers = {"Retry-After": str(error.retry_after)}
    return scim_response(error.body(), error.status, headers)


@method_decorator(csrf_exempt, name="dispatch")
class ScimView(View):
    """Token authentication, body parsing and error handling shared by every SCIM endpoint."""

    http_method_names = ["get", "post", "put", "patch", "delete"]

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            self.principal = self._authenticate(request)
            context = current_context()
            if context is not None:
                context.actor = self.principal
            if (
                request.method.lower() not in self.http_method_names
                or getattr(self, request.method.lower(), None) is None
            ):
                raise ScimError(405, f"{request.method} is not supported here.")
            self.base_url = request.build_absolute_uri("/scim/v2").rstrip("/")
            return super().dispatch(request, *args, **kwargs)
        except ScimError as error:
            return _error(error)
        except AccessDenied:
            return _error(ScimError(403, "This token may not do that."))
        except Exception:
            # Never a bare 500 page: a SCIM client gets a SCIM error, the log the details.
            logger.exception("SCIM request failed")
            return _error(ScimError(500, "The request could not be completed."))

    def _authenticate(self, request: HttpRequest):
        """The token's principal. Failed attempts count per token prefix and per client address;
        past the limit a locked address is refused with 429 before any token is looked up, and a
        locked prefix refuses wrong secrets with 429 (not recorded one by one) while its holder's
        correct token still works."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        bearer = scheme.lower() == "bearer" and bool(token)
        prefix = SCIM_TOKENS.parse(token).prefix if bearer else ""
        address = client_ip(request)
        lockout = SCIM_THROTTLE.locked(prefix=None, address=address)
        if lockout is not None:
            raise ScimThrottledError(lockout.retry_after)
        held = SCIM_THROTTLE.locked(prefix=prefix, address=None)
        try:
            if not bearer:
                scim_auth_failure_record(prefix="", reason="missing" if not header else "not a bearer token")
                raise ScimError(401, "Send a SCIM token: Authorization: Bearer <token>.")
            try:
                return scim_token_authenticate(token=token, record_failure=held is None)
            except ScimAuthenticationError:
                raise ScimError(401, "Invalid, expired or revoked SCIM token.") from None
        except ScimError:
            for begun in SCIM_THROTTLE.failed(prefix=prefix, address=address):
                scim_lockout_record(lockout=begun, prefix=prefix, address=address)
            if held is not None:
                raise ScimThrottledError(held.retry_after) from None
            raise

    def body(self, request: HttpRequest) -> Any:
        content_type = request.content_type or ""
        if content_type not in ("application/scim+json", "application/json", "", "text/plain"):
            raise ScimError(415, "Send application/scim+json.")
        too_large = ScimError(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.", "tooLarge")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise ScimError(400, "The Content-Length header is not a number.", "invalidSyntax") from None
        if declared > MAX_BODY_BYTES:
            raise too_large
        try:
            body = request.body
        except RequestDataTooBig:
            raise too_large from None
        if len(body) > MAX_BODY_BYTES:
            raise too_large
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise ScimError(400, "The request body is not valid JSON.", "invalidSyntax") from None
        refuse_unstorable_text(document)
        return document

    def page(self, request: HttpRequest, queryset, render) -> HttpResponse:
        start, count = parse_paging(request.GET)
        total = queryset.count()
        rows = list(queryset[start - 1 : start - 1 + count]) if count else []
        return scim_response(list_response([render(row) for row in rows], total, start))


def _by_id(queryset, value: str):
    if not value.isdigit() or len(value) > 18:
        raise ScimError(404, "No such resource.")
    found = queryset.filter(pk=int(value)).first()
    if found is None:
        raise ScimError(404, "No such resource.")
    return found


def _operations_summary(operations) -> list[dict[str, str]]:
    return [{"op": operation.op, "path": operation.path[:200]} for operation in operations]


class UsersView(ScimView):
    """``/Users``: list (with ``filter=userName eq "…"`` and paging) and create."""

    def users(self):
        visible = restrict(User.objects.all(), self.principal, "user.view")
        return visible.filter(deprovisioned_at__isnull=True).prefetch_related("scim_groups").order_by("pk")

    def get(self, request: HttpRequest) -> HttpResponse:
        queryset = self.users()
        wanted = parse_filter(request.GET.get("filter"), ("username", "externalid", "id"))
        if wanted is not None:
            if wanted.attribute == "username":
                queryset = queryset.filter(email__iexact=wanted.value)
            elif wanted.attribute == "externalid":
                queryset = queryset.filter(scim_external_id=wanted.value)
            else:
                queryset = (
                    queryset.filter(pk=int(wanted.value)) if wanted.value.isdigit() else queryset.none()
                )
        return self.page(request, queryset, lambda user: user_resource(user, self.base_url))

    def post(self, request: HttpRequest) -> HttpResponse:
        changes = display_name_of(user_document(self.body(request), creating=True))
        user = services.scim_user_create(actor=self.principal, changes=changes)
        resource = user_resource(user, self.base_url)
        return scim_response(resource, 201, {"Location": resource["meta"]["location"]})


class UserView(UsersView):
    """``/Users/<id>``: read, replace (PUT), patch, delete (deactivate and mark deprovisioned)."""

    def get(self, request: HttpRequest, user_id: str) -> HttpResponse:
        return scim_response(user_resource(_by_id(self.users(), user_id), self.base_url))

    def put(self, request: HttpRequest, user_id: str) -> HttpResponse:
        user = _by_id(self.users(), user_id)
        changes = display_name_of(user_document(self.body(request), creating=False))
        user = services.scim_user_replace(actor=self.principal, user=user, changes=changes)
        return scim_response(user_resource(user, self.base_url))

    def patch(self, request: HttpRequest, user_id: str) -> HttpResponse:
        user = _by_id(self.users(), user_id)
        operations = parse_patch(self.body(request))
        changes = display_name_of(user_patch(operations), user.display_name)
        user = services.scim_user_patch(
            actor=self.principal, user=user, changes=changes, operations=_operations_summary(operations)
        )
        return scim_response(user_resource(user, self.base_url))

    def delete(self, request: HttpRequest, user_id: str) -> HttpResponse:
        services.scim_user_delete(actor=self.principal, user=_by_id(self.users(), user_id))
        return scim_response(None, 204)

    post = None  # type: ignore[assignment]


class GroupsView(ScimView):
    """``/Groups``: list (``filter=displayName eq "…"``, paging, ``excludedAttributes=members``), create."""

    def groups(self):
        visible = restrict(ScimGroup.objects.all(), self.principal, "user.view")
        return visible.prefetch_related("members").order_by("pk")

    def with_members(self, request: HttpRequest) -> bool:
        excluded = request.GET.get("excludedAttributes", "")
        return "members" not in {name.strip().lower() for name in excluded.split(",")}

    def get(self, request: HttpRequest) -> HttpResponse:
        queryset = self.groups()
        wanted = parse_filter(request.GET.get("filter"), ("displayname", "externalid", "id"))
        if wanted is not None:
            if wanted.attribute == "displayname":
                queryset = queryset.filter(display_name__iexact=wanted.value)
            elif wanted.attribute == "externalid":
                queryset = queryset.filter(external_id=wanted.value)
            else:
                queryset = (
                    queryset.filter(pk=int(wanted.value)) if wanted.value.isdigit() else queryset.none()
                )
        members = self.with_members(request)
        return self.page(
            request, queryset, lambda group: group_resource(group, self.base_url, with_members=members)
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        group = services.scim_group_create(actor=self.principal, changes=group_document(self.body(request)))
        resource = group_resource(group, self.base_url)
        return scim_response(resource, 201, {"Location": resource["meta"]["location"]})


class GroupView(GroupsView):
    """``/Groups/<id>``: read, replace, patch (members, displayName, externalId), delete."""

    def get(self, request: HttpRequest, group_id: str) -> HttpResponse:
        group = _by_id(self.groups(), group_id)
        return scim_response(group_resource(group, self.base_url, with_members=self.with_members(request)))

    def put(self, request: HttpRequest, group_id: str) -> HttpResponse:
        group = _by_id(self.groups(), group_id)
        changes = group_document(self.body(request))
        group = services.scim_group_replace(actor=self.principal, group=group, changes=changes)
        return scim_response(group_resource(group, self.base_url))

    def patch(self, request: HttpRequest, group_id: str) -> HttpResponse:
        group = _by_id(self.groups(), group_id)
        operations = parse_patch(self.body(request))
        group = services.scim_group_patch(actor=self.principal, group=group, operations=operations)
        return scim_response(group_resource(group, self.base_url))

    def delete(self, request: HttpRequest, group_id: str) -> HttpResponse:
        services.scim_group_delete(actor=self.principal, group=_by_id(self.groups(), group_id))
        return scim_response(None, 204)

    post = None  # type: ignore[assignment]


class DiscoveryView(ScimView):
    """``/ServiceProviderConfig``, ``/ResourceTypes`` and ``/Schemas`` (read-only)."""

    document = ""

    def get(self, request: HttpRequest, name: str | None = None) -> HttpResponse:
        return scim_response(discovery.document(self.document, self.base_url, name))
