"""Safe writers for the package's CSV, JSON(L) and HTML: nothing a user typed can act on a reader.

- CSV (RFC 4180: comma, CRLF, fields quoted when needed, quotes doubled): a cell starting with
  ``=``, ``+``, ``-``, ``@``, tab or carriage return is prefixed with ``'`` so that a spreadsheet
  shows it as text instead of running it as a formula (OWASP "CSV injection"); other control
  characters than tab, CR and LF are written as ``\\uXXXX``.
- JSON and JSONL: ASCII only, so every control character (C0, DEL, C1, U+2028/2029) is a
  ``\\uXXXX`` escape; a line cannot be split or carry terminal escape sequences.
- HTML: every value goes through ``html.escape`` (quotes included).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from audit.canonical import format_time

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Control characters other than tab, CR and LF (which RFC 4180 quoting carries) are shown as
# \uXXXX in CSV cells, so a file printed to a terminal cannot drive it.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def csv_cell(value: Any) -> str:
    """A value as CSV text, neutralised when a spreadsheet would take it for a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, dict):
        value = json_text(value)
    elif isinstance(value, list | tuple):
        value = "; ".join(item if isinstance(item, str) else json_text(item) for item in value)
    text = _CONTROL.sub(lambda match: f"\\u{ord(match[0]):04x}", str(value))
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def csv_rows(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[bytes]:
    """RFC 4180 CSV (UTF-8, CRLF), one encoded row at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def take(row: Iterable[Any]) -> bytes:
        writer.writerow([csv_cell(value) for value in row])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode("utf-8")

    yield take(header)
    for row in rows:
        yield take(row)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_text(document: Any, *, indent: int | None = None) -> str:
    """JSON with every non-ASCII and control character escaped (DEL included, which JSON allows raw)."""
    text = json.dumps(
        document,
        ensure_ascii=True,
        sort_keys=True,
        indent=indent,
        default=_json_default,
        separators=(",", ": ") if indent else (",", ":"),
    )
    # DEL is ASCII, so ensure_ascii leaves it; outside strings JSON never contains it.
    return text.replace("\x7f", "\\u007f")


def jsonl_line(document: Any) -> bytes:
    return (json_text(document) + "\n").encode("ascii")


def json_array(items: Iterable[Any]) -> Iterator[bytes]:
    """A JSON array written one element at a time (constant memory)."""
    yield b"[\n"
    first = True
    for item in items:
        yield (b"" if first else b",\n") + json_text(item).encode("ascii")
        first = False
    yield b"\n]\n"
