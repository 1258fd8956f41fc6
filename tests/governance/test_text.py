"""The text rules of ``governance.core.text`` and their adapters (API parser, form fields),
checked over arbitrary Unicode — surrogates, NUL, format characters and all."""

from __future__ import annotations

import io
import json
import unicodedata

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import exceptions

from governance.core.forms import IdentifierEmailField, StorableJSONField
from governance.core.parsers import SafeJSONParser
from governance.core.text import (
    TextRefusalError,
    identifier_refusal,
    json_refusal,
    normalise_identifier,
    printable_key,
    text_refusal,
)

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True)
# Every code point, surrogates (Cs) and NUL included: st.text() alone leaves surrogates out.
any_character = st.characters(codec=None, categories=None)
any_text = st.text(any_character, max_size=30)
hostile_text = st.one_of(
    any_text,
    st.builds(
        lambda a, b, c: a + b + c, any_text, st.sampled_from(["\x00", "\ud800", "\udfff", "\udc00"]), any_text
    ),
)
json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)
INVISIBLES = ["\u200b", "\u2060", "\u00ad", "\u200e", "\u202e", "\ufeff", "\u2066", "\u180e"]
# Default-ignorable characters that are not format characters: a combining grapheme joiner and
# variation selectors (Mn), Hangul fillers and a Khmer inherent vowel (Lo), a Mongolian selector.
IGNORABLES = [
    "\u034f",
    "\ufe00",
    "\ufe0f",
    "\U000e0100",
    "\u115f",
    "\u1160",
    "\u3164",
    "\uffa0",
    "\u17b4",
    "\u180b",
]


def _storable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


@PROPERTY
@given(hostile_text)
def test_text_refusal_is_exactly_nul_or_an_unpaired_surrogate(value):
    """GIVEN any text WHEN asked THEN it is refused exactly when it holds NUL or cannot be UTF-8."""
    assert (text_refusal(value) is None) == _storable(value)


def _strings(document):
    """Every string of a JSON document, keys included (the test's own oracle, recursive)."""
    if isinstance(document, str):
        yield document
    elif isinstance(document, dict):
        for key, value in document.items():
            yield key
            yield from _strings(value)
    elif isinstance(document, list):
        for value in document:
            yield from _strings(value)


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", "x\udfffy", "\udc00\ud800"])
def test_text_refusal_says_what_to_remove(value):
    """GIVEN NUL or a lone surrogate WHEN checked THEN the reason names the character."""
    refusal = text_refusal(value)
    assert refusal is not None
    assert "U+0000" in refusal or "surrogate" in refusal


def test_ordinary_text_is_kept():
    """GIVEN text with tabs, line breaks, emoji and right-to-left script THEN it is accepted."""
    assert text_refusal("line one\n\tline two 🚀 שלום مرحبا e\u0301") is None


@PROPERTY
@given(hostile_text)
def test_an_accepted_identifier_is_nfkc_and_visible(value):
    """GIVEN any text WHEN normalised as an identifier THEN either it is refused or the result is
    NFKC, idempotent, storable and holds no format or control character."""
    try:
        result = normalise_identifier(value)
    except TextRefusalError:
        assert identifier_refusal(value) or identifier_refusal(unicodedata.normalize("NFKC", value))
        return
    assert result == unicodedata.normalize("NFKC", value)
    assert normalise_identifier(result) == result
    assert _storable(result)
    assert not any(unicodedata.category(c) in {"Cf", "Cc", "Cs", "Co", "Cn", "Zl", "Zp"} for c in result)


@pytest.mark.parametrize("invisible", INVISIBLES + IGNORABLES)
def test_invisible_characters_in_an_address_are_refused(invisible):
    """GIVEN officer@demo.example with an invisible character after it, inside its local part or
    inside its domain THEN refused."""
    for value in (
        f"officer@demo.example{invisible}",
        f"offi{invisible}cer@demo.example",
        f"officer@demo.ex{invisible}ample",
    ):
        with pytest.raises(TextRefusalError, match="invisible or control character"):
            normalise_identifier(value)
        assert identifier_refusal(value) is not None


def test_full_width_look_alikes_become_the_ascii_address():
    """GIVEN a full-width address WHEN normalised THEN it is the ASCII address (which then meets
    the existing account instead of passing for it)."""
    assert normalise_identifier("ｏｆｆｉｃｅｒ＠demo.example") == "officer@demo.example"


def test_json_refusal_names_the_path_of_the_value():
    """GIVEN nested JSON with NUL or a surrogate deep inside THEN the path of that value is named."""
    document = {"trigger": {"type": "manual"}, "steps": [{"id": "a"}, {"id": "b", "prompt": "x\x00"}]}
    assert json_refusal(document)[0] == "steps[1].prompt"
    assert json_refusal({"a": [["ok", "\ud800"]]})[0] == "a[0][1]"
    path, reason = json_refusal({"a": {"bad\x00key": 1}})
    assert path == "a"
    assert reason.startswith("A key:")
    assert json_refusal({"fine": ["yes", 1, None, {"k": "v"}]}) is None


def test_json_refusal_walks_any_depth_without_recursion():
    """GIVEN JSON nested far deeper than Python's recursion limit THEN the walk still answers."""
    document: object = "\x00"
    for _ in range(5_000):
        document = [document]
    assert json_refusal(document) is not None


@PROPERTY
@given(json_documents)
def test_json_refusal_finds_every_unstorable_document(document):
    """GIVEN any JSON document THEN it is refused exactly when its JSON text cannot be stored."""
    assert (json_refusal(document) is None) == all(_storable(text) for text in _strings(document))


@PROPERTY
@given(hostile_text)
def test_printable_key_can_always_be_sent_back(key):
    """GIVEN any key THEN its printable form is storable UTF-8 (it appears in error bodies)."""
    shown = printable_key(key)
    assert _storable(shown)
    assert shown.isprintable() or "…" in shown


# --- The API's parser ---------------------------------------------------------------------------


def _parse(document) -> object:
    body = json.dumps(document).encode()  # ensure_ascii: surrogates and NUL travel as \u escapes
    return SafeJSONParser().parse(io.BytesIO(body), "application/json", {})


@PROPERTY
@given(json_documents)
def test_the_parser_refuses_unstorable_text_with_a_field_error(document):
    """GIVEN any JSON body WHEN parsed THEN it comes back unchanged if storable, else a 400 whose
    key is the top-level field (or non_field_errors) and whose message names the path."""
    try:
        parsed = _parse(document)
    except exceptions.ValidationError as error:
        assert json_refusal(document) is not None
        (field, messages), *_ = error.detail.items()
        assert messages
        assert all(_storable(str(message)) for message in messages)
        assert _storable(field)
        if isinstance(document, dict):
            assert field != "non_field_errors" or "non_field_errors" in document
        return
    assert json_refusal(document) is None
    assert parsed == document


def test_the_parser_keys_the_error_by_field_and_path():
    """GIVEN a definition with NUL in a step THEN the error is under "definition" with the path."""
    with pytest.raises(exceptions.ValidationError) as raised:
        _parse({"name": "ok", "definition": {"steps": [{"expression": "a\x00"}]}})
    assert list(raised.value.detail) == ["definition"]
    assert str(raised.value.detail["definition"][0]).startswith("steps[0].expression: Remove the NUL")


# --- Form fields ---------------------------------------------------------------------------------


def test_identifier_email_field_normalises_and_refuses():
    """GIVEN the control panel's e-mail field WHEN cleaned THEN full-width becomes ASCII and an
    invisible character is a field error naming it."""
    field = IdentifierEmailField()
    assert field.clean("ｏｆｆｉｃｅｒ@demo.example") == "officer@demo.example"
    with pytest.raises(ValidationError, match="U\\+200B"):
        field.clean("officer@demo.example\u200b")


def test_storable_json_field_refuses_escaped_nul():
    """GIVEN JSON text with an escaped NUL (which a form post can carry) THEN a field error."""
    field = StorableJSONField()
    assert field.clean('{"a": ["b"]}') == {"a": ["b"]}
    with pytest.raises(ValidationError, match=r"a\[0\]: Remove the NUL"):
        field.clean('{"a": ["\\u0000"]}')
    with pytest.raises(ValidationError, match="surrogate"):
        field.clean('"\\ud800"')
