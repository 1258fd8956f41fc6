"""JSON typed by people (every governed admin's JSON fields) is read as RFC 8259 JSON that
PostgreSQL can store: anything else is a field error, never a server error."""

from __future__ import annotations

import math

import pytest
from django.core.exceptions import ValidationError

from governance.core.forms import StorableJSONField
from governance.core.text import MAX_JSON_DEPTH, JsonRefusedError, json_refusal, strict_json_loads

HOSTILE = {
    "nan": '{"a": NaN}',
    "infinity": "[Infinity]",
    "minus infinity": "[-Infinity]",
    "overflow": '{"a": 1e999}',
    "5,000 digits": "[1" + "0" * 5000 + "]",
    "10,000 deep": "[" * 10_000 + "]" * 10_000,
    "900 deep": '{"a":' * 900 + "1" + "}" * 900,
    "lone surrogate": '["\\ud800"]',
    "NUL": '{"\\u0000": 1}',
    "not JSON": "{'single': 'quotes'}",
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_json_is_a_field_error(text):
    field = StorableJSONField()
    with pytest.raises(ValidationError):
        field.clean(text)
    assert field.bound_data(text, None) is not None  # shown again for correction, never a crash


def test_depth_up_to_the_limit_is_read_and_brackets_in_strings_do_not_count():
    deep = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert strict_json_loads(deep) is not None
    assert strict_json_loads('{"a": "' + "[" * 10_000 + '\\"["}') == {"a": "[" * 10_000 + '"['}
    with pytest.raises(JsonRefusedError, match="deeper than"):
        strict_json_loads("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))


def test_the_refusal_never_quotes_the_text():
    with pytest.raises(JsonRefusedError) as refused:
        strict_json_loads('{"secret-looking": NaN}')
    assert "secret-looking" not in str(refused.value)


def test_documents_built_in_code_are_checked_for_non_finite_numbers_too():
    assert json_refusal({"a": [1.5, math.nan]}) == (
        "a[1]",
        "NaN and Infinity are not JSON numbers: enter a finite number.",
    )
    assert json_refusal({"a": math.inf}) is not None
    assert json_refusal({"a": 1e308}) is None
