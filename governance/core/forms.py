"""Form fields and validators that apply the text rules of ``governance.core.text``.

The control panel gets them for every governed admin through ``GovernedModelAdmin``'s
``formfield_overrides`` (every e-mail field normalised as an identifier, every JSON field walked);
the builders' and account pages use them where they parse JSON or take an address. Plain
character fields need nothing more: Django's ``CharField`` refuses NUL, and a form post cannot
carry an unpaired surrogate (its bytes are decoded with replacement).
"""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput, JSONString

from governance.core.text import (
    JsonRefusedError,
    identifier,
    strict_json_loads,
    text_refusal,
    validate_storable_json,
)


class IdentifierEmailField(forms.EmailField):
    """An e-mail address as an identifier: NFKC-normalised, invisible and control characters
    refused before the address itself is checked."""

    def to_python(self, value):
        value = super().to_python(value)
        return identifier(value) if value else value


class StorableJSONField(forms.JSONField):
    """A JSON field whose strings (keys included) and numbers the database can store, read as
    RFC 8259 JSON: NaN, Infinity, an overflowing number, a 5,000-digit integer or nesting past
    ``MAX_JSON_DEPTH`` is a field error, never a server error."""

    default_validators = [validate_storable_json]

    def to_python(self, value):
        if (
            self.disabled
            or value in self.empty_values
            or isinstance(value, list | dict | int | float | JSONString)
        ):
            return super().to_python(value)
        try:
            converted = strict_json_loads(value)
        except JsonRefusedError as error:
            raise ValidationError(str(error), code="invalid") from None
        return JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data, initial):
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        try:
            return strict_json_loads(data)
        except JsonRefusedError:
            return InvalidJSONInput(data)

    def prepare_value(self, value):
        # A refused document is shown again for correction: a string holding an unpaired
        # surrogate (typed as a JSON escape) is shown escaped, since the page cannot encode it.
        text = super().prepare_value(value)
        if isinstance(text, str) and not isinstance(value, str) and text_refusal(text):
            return json.dumps(value, ensure_ascii=True, cls=self.encoder)
        return text
