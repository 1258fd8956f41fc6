"""Form fields and validators that apply the text rules of ``governance.core.text``.

The control panel gets them for every governed admin through ``GovernedModelAdmin``'s
``formfield_overrides`` (every e-mail field normalised as an identifier, every JSON field walked);
the builders' and account pages use them where they parse JSON or take an address. Plain
character fields need nothing more: Django's ``CharField`` refuses NUL, and a form post cannot
carry an unpaired surrogate (its bytes are decoded with replacement).
"""

from __future__ import annotations

from django import forms

from governance.core.text import identifier, validate_storable_json


class IdentifierEmailField(forms.EmailField):
    """An e-mail address as an identifier: NFKC-normalised, invisible and control characters
    refused before the address itself is checked."""

    def to_python(self, value):
        value = super().to_python(value)
        return identifier(value) if value else value


class StorableJSONField(forms.JSONField):
    """A JSON field whose strings (keys included) the database can store."""

    default_validators = [validate_storable_json]
