"""API plumbing shared by every app: index-backed pagination, and the error handler that turns
service errors into field-level 400s (the JSON parser is in ``governance.core.parsers``)."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, pagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from governance.core.errors import ExplainedError, ReasonedRefusal
from governance.core.redaction import redact_data


def exception_handler(exc, context):
    """Turn service errors into field-level 400s and refusals into 403s with the reason; redact secrets."""
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


class IdCursorPagination(pagination.CursorPagination):
    """Stable, index-backed pagination that stays fast on deep pages."""

    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 200
