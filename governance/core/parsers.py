"""The API's JSON parser. A module of its own: DRF's views module reads the parser setting while it
loads, so the parser must not live in a module that imports DRF's views."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from governance.core.text import json_refusal, printable_key


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with deeply nested documents refused as a 400 rather than a crash, and
    text the database cannot store (NUL, unpaired surrogates — ``governance.core.text``) refused
    as a field-level 400 before any view sees it: ``{"definition": ["steps[0].prompt: Remove
    ..."]}``, keyed by the top-level field, the path inside it leading the message."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the document is nested too deeply.") from None
        refuse_unstorable_text(data)
        return data


def refuse_unstorable_text(data) -> None:
    """Raise a field-level ``ValidationError`` if the parsed body ``data`` holds text that cannot
    be stored; a body that is not an object reports under ``non_field_errors``."""
    if isinstance(data, dict):
        errors = {}
        for key, value in data.items():
            field = printable_key(key) if isinstance(key, str) else str(key)
            found = json_refusal({key: value})
            if found:
                path, reason = found
                inner = path.removeprefix(field).removeprefix(".")
                errors[field] = [f"{inner}: {reason}" if inner else reason]
        if errors:  # every field that carries such text, as DRF reports every invalid field
            raise exceptions.ValidationError(errors)
        return
    found = json_refusal(data)
    if found:
        path, reason = found
        raise exceptions.ValidationError({"non_field_errors": [f"{path}: {reason}" if path else reason]})
