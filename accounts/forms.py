"""Forms of the person's own account pages (validation only)."""

from __future__ import annotations

from django import forms


class CodeForm(forms.Form):
    """A code from an authenticator app (six digits) or a backup code (XXXXX-XXXXX)."""

    code = forms.CharField(
        label="Code",
        max_length=20,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}
        ),
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if not code.replace("-", "").isalnum():
            raise forms.ValidationError("Type the six digits from your app, or one backup code.")
        return code


class EnrolTOTPForm(forms.Form):
    """The first code from a newly scanned authenticator app, and a name to tell devices apart."""

    name = forms.CharField(
        label="Name of this device", max_length=64, required=False, initial="Authenticator app"
    )
    code = forms.RegexField(
        label="Six-digit code from the app",
        regex=r"^\s*\d{3}\s?\d{3}\s*$",
        error_messages={"invalid": "Type the six digits the app shows now."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_code(self) -> str:
        return "".join(self.cleaned_data["code"].split())


class SessionEndForm(forms.Form):
    """Which of your sessions to end: its number, as the sessions page sends it."""

    session = forms.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        error_messages={
            "required": "Choose a session to end.",
            "invalid": "That is not one of your sessions.",
            "min_value": "That is not one of your sessions.",
            "max_value": "That is not one of your sessions.",
        },
    )
