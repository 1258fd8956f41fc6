"""API error handling: service errors become field-level 400s, refusals 403s with the reason."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from governance.access.decision import AccessDenied
from governance.crypto.errors import CryptoError, explain
from governance.redaction import redact_data


def exception_handler(exc, context):
    """Turn service errors into field-level 400s and refusals into 403s with the reason; redact secrets."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, AccessDenied):
        exc = exceptions.PermissionDenied(exc.decision.message)
    elif isinstance(exc, CryptoError):
        status, message = explain(exc)
        logging.getLogger("governance.crypto").error("%s: %s", type(exc).__name__, exc)
        return Response({"detail": message}, status=status)
    response = drf_exception_handler(exc, context)
    if response is not None:
        # Error messages may echo the input; a credential in it is not sent back. Field names
        # stay as they are (a "password" field's error is still that field's error).
        response.data = redact_data(response.data, by_key=False)
    return response


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with deeply nested documents refused as a 400 rather than a crash."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the document is nested too deeply.") from None
