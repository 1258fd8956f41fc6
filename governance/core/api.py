"""API plumbing shared by every app: index-backed pagination that refuses bad paging, the error
handler that turns service errors into field-level 400s, and the schema class that documents
those errors (the JSON parser is in ``governance.core.parsers``)."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent, append_meta
from rest_framework import exceptions, pagination, permissions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from governance.core.errors import ExplainedError, ReasonedRefusal
from governance.core.redaction import redact_data


def exception_handler(exc, context):
    """Turn service errors into field-level 400s, refusals into 403s with the reason and an
    oversized body into a 413; redact secrets."""
    if isinstance(exc, RequestDataTooBig):
        # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE as it is read; left to Django,
        # that is an HTML 400. It is the body's size, and the answer says so, in JSON.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response({"detail": f"The request body is larger than {limit} bytes."}, status=413)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, ReasonedRefusal):
        exc = exceptions.PermissionDenied(str(exc))
    elif isinstance(exc, ExplainedError):
        status, message = exc.explain()
        logging.getLogger(exc.log_name).error("%s: %s", type(exc).__name__, exc)
        return Response({"detail": message}, status=status)
    response = drf_exception_handler(exc, context)
    if response is not None:
        # Error messages may echo the input; a credential in it is not sent back. Field names
        # stay as they are (a "password" field's error is still that field's error).
        response.data = redact_data(response.data, by_key=False)
    return response


# --- Pagination ---------------------------------------------------------------------------------

_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


class IdCursorPagination(pagination.CursorPagination):
    """Stable, index-backed pagination that stays fast on deep pages.

    DRF's cursor pagination quietly replaces a bad ``page_size`` with the default and answers a
    bad cursor with 404; here both are the client's error, a 400 naming the parameter.
    """

    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 200
    invalid_page_size_message = "Enter a whole number from 1 to {max}."
    invalid_cursor_message = "Invalid cursor: pass the cursor of a 'next' or 'previous' link unchanged."

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        size = int(raw) if _WHOLE_NUMBER.fullmatch(raw) else 0
        if not 1 <= size <= self.max_page_size:
            message = self.invalid_page_size_message.format(max=self.max_page_size)
            raise exceptions.ValidationError({self.page_size_query_param: [message]})
        return size

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                # The position is compared with the ordering field: a value it cannot hold
                # (a forged cursor) would fail in the database instead.
                name = self.ordering[0].lstrip("-") if isinstance(self.ordering, tuple) else self.ordering
                self._model._meta.get_field(name.lstrip("-")).to_python(cursor.position)
        except (exceptions.NotFound, DjangoValidationError):
            raise exceptions.ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            ) from None
        return cursor

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The cursor of a `next` or `previous` link, unchanged; any other value is "
                "refused with 400.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page, 1 to {self.max_page_size} (default {self.page_size}); "
                "any other value is refused with 400.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]


# --- Schema -------------------------------------------------------------------------------------

# The bodies that ``exception_handler`` (and the middleware that answers API paths) send.
_ERROR = {
    "type": "object",
    "description": "An error with the words a person sees. `code` names a few machine-readable "
    "cases (e.g. `mfa_required`).",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail"],
}
_VALIDATION_ERRORS = {
    "type": "object",
    "description": "Field-level errors: each invalid field (or `non_field_errors`) maps to its "
    "messages; a nested field maps to the errors of its members.",
    "additionalProperties": {
        "anyOf": [{"type": "array", "items": {}}, {"type": "object", "additionalProperties": {}}]
    },
    "minProperties": 1,
}
_ERROR_STATUSES = {
    400: "Invalid input: field-level errors, or `detail` for a body or query that cannot be read.",
    401: "Not authenticated: no credentials, or a token that is unknown, expired or revoked, or a "
    "session that has ended.",
    403: "Refused: the reason in `detail` (a role you do not hold, a policy, segregation of duties, "
    "multi-factor authentication not verified in this session).",
    404: "Not found, or outside what you may see: the two answer alike.",
    409: "Conflict with the object's current state.",
    413: "The request body is larger than the portal accepts.",
    423: "The object is locked.",
    429: "Too many requests: try again later (`Retry-After`).",
}
# DRF sends and accepts times of day as "09:00:00" (microseconds when there are any), no offset.
_TIME_OF_DAY = {
    "type": "string",
    "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
    "example": "09:00:00",
}
# Status codes that a view or an authentication class may add on its own, by naming them in an
# ``error_statuses`` attribute (e.g. a conflict, or a throttle that is not a DRF throttle class).
_DECLARED = "error_statuses"


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, with each operation's error answers documented from what the
    operation is, never listed by hand per view:

    - 400 for writes (input and service validation) and for operations with query parameters
      (paging and filters refuse values they do not know);
    - 401 and 403 for operations that require authentication;
    - 404 for operations on an object (a path parameter);
    - 413 for operations with a request body (Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``);
    - 429 when the view has throttles;
    - anything else a view or one of its authentication classes declares in ``error_statuses``.

    Time-of-day values are documented as the ``HH:MM:SS`` strings DRF sends and accepts: OpenAPI's
    ``format: time`` is RFC 3339's full-time, which requires a UTC offset they do not carry.
    """

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for status in sorted(self._error_statuses(operation)):
            responses.setdefault(str(status), self._error_response(status))
        return operation

    def _error_statuses(self, operation) -> set[int]:
        parameters = operation.get("parameters", [])
        statuses: set[int] = set()
        if self.method not in permissions.SAFE_METHODS or any(p["in"] == "query" for p in parameters):
            statuses.add(400)
        if not all(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions()):
            statuses.update((401, 403))
        if any(p["in"] == "path" for p in parameters):
            statuses.add(404)
        if "requestBody" in operation:
            statuses.add(413)
        if self.view.get_throttles():
            statuses.add(429)
        for declaring in (self.view, *self.view.get_authenticators()):
            statuses.update(getattr(declaring, _DECLARED, ()))
        return statuses

    def _error_response(self, status: int) -> dict:
        error = self._component("Error", _ERROR)
        if status == 400:
            schema = {"anyOf": [self._component("ValidationErrors", _VALIDATION_ERRORS), error]}
        else:
            schema = error
        return {"description": _ERROR_STATUSES[status], "content": {"application/json": {"schema": schema}}}

    def _component(self, name: str, schema: dict) -> dict:
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
        self.registry.register_on_missing(component)
        return component.ref

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        if isinstance(field, serializers.TimeField) and not bypass_extensions:
            return append_meta(dict(_TIME_OF_DAY), self._get_serializer_field_meta(field, direction))
        return super()._map_serializer_field(field, direction, bypass_extensions)
