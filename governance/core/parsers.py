"""The API's JSON parser. A module of its own: DRF's views module reads the parser setting while it
loads, so the parser must not live in a module that imports DRF's views."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with deeply nested documents refused as a 400 rather than a crash."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the document is nested too deeply.") from None
