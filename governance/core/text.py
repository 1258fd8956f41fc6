"""The rules for text that reaches the database, in one place.

Every way in — the API's JSON parser, forms (the control panel's and the builders'), SCIM, the
services that validate imported definitions — asks these functions and shows the answer as an
error on the field that carried the value. Two kinds of rule:

- **any text** (``text_refusal``): no NUL (PostgreSQL refuses ``\\u0000`` in text and in
  ``jsonb``) and no unpaired surrogate (U+D800–U+DFFF is not a character; it cannot be encoded as
  UTF-8, so the database driver cannot send it). Everything else is the writer's text, kept as
  sent — tabs, line breaks, emoji and right-to-left scripts included.
- **identifiers** (e-mail addresses, user names; ``normalise_identifier``): NFKC-normalised
  (a full-width ``ｏｆｆｉｃｅｒ`` becomes ``officer``), and refused if they hold an invisible or
  format character (Unicode category Cf: zero-width space, word joiner, soft hyphen, bidi
  controls, ...), another default-ignorable character (variation selectors, the combining
  grapheme joiner, Hangul fillers), a control character or a line or paragraph separator: such a
  name looks on
  screen exactly like another account's. (Look-alike letters from other scripts in the local
  part are refused by the e-mail validator, which takes ASCII only there.)

JSON documents are walked whole (``json_refusal``), keys included, and the refusal names the path
of the offending value (``steps[2].prompt``), in the notation the definition checks use.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from django.core.exceptions import ValidationError

# Categories refused inside identifiers: format (Cf), control (Cc), surrogate (Cs), private use
# (Co), unassigned (Cn), and line/paragraph separators (Zl, Zp).
_IDENTIFIER_REFUSED_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Co", "Cn", "Zl", "Zp"})

# Unicode's Default_Ignorable_Code_Point characters outside those categories (DerivedCoreProperties
# .txt): they render as nothing, yet are marks (Mn) or letters (Lo) — the combining grapheme joiner,
# variation selectors, Mongolian free variation selectors, the Hangul fillers, Khmer inherent
# vowels. Python's unicodedata does not expose the property, hence the list.
_DEFAULT_IGNORABLE_RANGES = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0100, 0xE01EF),
)


def _invisible(character: str) -> bool:
    if unicodedata.category(character) in _IDENTIFIER_REFUSED_CATEGORIES:
        return True
    code = ord(character)
    return any(low <= code <= high for low, high in _DEFAULT_IGNORABLE_RANGES)


class TextRefusalError(ValueError):
    """A value the rules refuse; ``message`` says what to remove, ``path`` where (JSON only)."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(f"{path}: {message}" if path else message)
        self.message, self.path = message, path


def _codepoint(character: str) -> str:
    return f"U+{ord(character):04X}"


def text_refusal(value: str) -> str | None:
    """Why ``value`` cannot be stored (a sentence for the person who sent it), or None."""
    if "\x00" in value:
        return "Remove the NUL character (U+0000): text cannot hold it."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = value[error.start]
        return (
            f"Remove the unpaired surrogate {_codepoint(bad)} at position {error.start + 1}: "
            "it is not a character and cannot be stored."
        )
    return None


_BIDI_CONTROLS = frozenset(chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def display_name_refusal(value: str) -> str | None:
    """Why ``value`` cannot name something that others review (a provider, a licence): what
    ``text_refusal`` refuses, control characters, and the bidirectional embeddings, overrides and
    isolates that make a name read on screen as something else; None when it can."""
    refusal = text_refusal(value)
    if refusal:
        return refusal
    for character in value:
        if character in _BIDI_CONTROLS or unicodedata.category(character) == "Cc":
            return (
                f"Remove the control or bidirectional-override character {_codepoint(character)}: "
                "a name must read on screen as it is stored."
            )
    return None


def identifier_refusal(value: str) -> str | None:
    """Why ``value`` cannot be an identifier (e-mail address, user name), or None. Checks the
    value as given; ``normalise_identifier`` checks it before and after NFKC."""
    refusal = text_refusal(value)
    if refusal:
        return refusal
    for position, character in enumerate(value, start=1):
        if _invisible(character):
            name = unicodedata.name(character, "unnamed")
            return (
                f"Remove the invisible or control character {_codepoint(character)} ({name.lower()}) "
                f"at position {position}: it would make this name look like another one."
            )
    return None


def normalise_identifier(value: str) -> str:
    """``value`` in NFKC, or ``TextRefusalError`` if it holds a character no identifier may hold."""
    refusal = identifier_refusal(value)
    if refusal:
        raise TextRefusalError(refusal)
    normalised = unicodedata.normalize("NFKC", value)
    refusal = identifier_refusal(normalised)
    if refusal:
        raise TextRefusalError(refusal)
    return normalised


def printable_key(key: str, limit: int = 100) -> str:
    """A key as it may be shown in an error (and sent back in one): NUL, surrogates and other
    control characters escaped, at most ``limit`` characters."""
    shown = "".join(
        character if character.isprintable() and text_refusal(character) is None else ascii(character)[1:-1]
        for character in key[:limit]
    )
    return shown + ("…" if len(key) > limit else "")


def _key_path(path: str, key: str) -> str:
    key = printable_key(key)
    return f"{path}.{key}" if path else key


MAX_JSON_DEPTH = 200  # brackets deep: more is refused before parsing (the parser recurses)


class JsonRefusedError(ValueError):
    """Text that is not JSON as RFC 8259 and PostgreSQL read it; the message never quotes it."""


def _no_constant(name: str) -> Any:
    raise JsonRefusedError(f"{name} is not a JSON number.")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise JsonRefusedError("A number is too large for a double.")
    return number


def _depth(text: str) -> int:
    deepest = depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def strict_json_loads(text: str) -> Any:
    """``json.loads`` that only takes what JSON and PostgreSQL's jsonb can hold: no NaN or
    Infinity, no number that overflows to one, no integer past Python's digit limit, at most
    ``MAX_JSON_DEPTH`` brackets deep; raises ``JsonRefusedError`` with a sentence that quotes nothing."""
    if _depth(text) > MAX_JSON_DEPTH:
        raise JsonRefusedError(f"It nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except JsonRefusedError:
        raise
    except json.JSONDecodeError as error:
        raise JsonRefusedError(f"Not valid JSON: {error.msg} (line {error.lineno}).") from None
    except (ValueError, RecursionError):
        raise JsonRefusedError("Not valid JSON: a number is too long, or it nests too deep.") from None


def json_refusal(document: Any, path: str = "") -> tuple[str, str] | None:
    """The first string (value or key) of a JSON ``document`` that cannot be stored, as
    ``(path, reason)`` — the path like ``steps[2].prompt``, empty for the document itself — or
    None. Walks without recursion, so any depth the parser accepted is walked."""
    stack: list[tuple[str, Any]] = [(path, document)]
    while stack:
        here, value = stack.pop()
        if isinstance(value, str):
            refusal = text_refusal(value)
            if refusal:
                return here, refusal
        elif isinstance(value, float) and not math.isfinite(value):
            return here, "NaN and Infinity are not JSON numbers: enter a finite number."
        elif isinstance(value, dict):
            children = []
            for key, child in value.items():
                if isinstance(key, str):
                    refusal = text_refusal(key)
                    if refusal:
                        return here, f"A key: {refusal}"
                children.append((_key_path(here, str(key)), child))
            stack.extend(reversed(children))
        elif isinstance(value, list | tuple):
            stack.extend(reversed([(f"{here}[{index}]", child) for index, child in enumerate(value)]))
    return None


def check_json(document: Any) -> None:
    """Raise ``TextRefusalError`` (with its path) if ``document`` holds a string that cannot be stored."""
    found = json_refusal(document)
    if found:
        raise TextRefusalError(found[1], found[0])


# --- Django's side: validators and the identifier as a ValidationError --------------------------

INVALID_TEXT = "invalid_text"


def validate_storable_text(value: str) -> None:
    """A validator: ``value`` holds no NUL and no unpaired surrogate."""
    refusal = text_refusal(value) if isinstance(value, str) else None
    if refusal:
        raise ValidationError(refusal, code=INVALID_TEXT)


def validate_storable_json(document: Any) -> None:
    """A validator: no string of the JSON ``document`` (keys included) holds NUL or an unpaired
    surrogate; the message names the path (``steps[2].prompt: ...``)."""
    try:
        check_json(document)
    except TextRefusalError as refused:
        raise ValidationError(str(refused), code=INVALID_TEXT) from None


def validate_display_name(value: str) -> None:
    """A validator for the names and one-line summaries that others review (a workflow's name, a
    change's summary): ``display_name_refusal`` as a ``ValidationError``."""
    refusal = display_name_refusal(value) if isinstance(value, str) else None
    if refusal:
        raise ValidationError(refusal, code=INVALID_TEXT)


def identifier(value: str) -> str:
    """``value`` as an identifier (NFKC), or a ``ValidationError`` naming the refused character."""
    try:
        return normalise_identifier(value)
    except TextRefusalError as refused:
        raise ValidationError(refused.message, code=INVALID_TEXT) from None


MAX_REASON_CHARS = 2000


def checked_reason(reason: str, *, field: str = "reason", required: bool = True) -> str:
    """A person's reason or comment, stripped: required unless said otherwise, at most
    ``MAX_REASON_CHARS``, and storable (no NUL, no unpaired surrogate) — else a field error."""
    reason = (reason or "").strip()
    if required and not reason:
        raise ValidationError({field: "Say why."})
    if len(reason) > MAX_REASON_CHARS:
        raise ValidationError({field: f"At most {MAX_REASON_CHARS:,} characters."})
    refusal = text_refusal(reason)
    if refusal:
        raise ValidationError({field: refusal})
    return reason
