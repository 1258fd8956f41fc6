"""The guardrails of an ``ai_prompt`` step (docs/ai-controls.md), one module per layer:

1. ``characters``: NFKC; invisible, bidirectional-control and other hidden characters removed;
2. ``secret_masking``: credentials and keys masked (detect-secrets' plugins);
3. ``personal_data``: personal data masked when the step sets ``redact_pii`` (Presidio, offline);
4. ``urls``: links outside the step's ``url_allow`` masked;
5. ``injection``: the injection risk score (rules + ``classifier``), with its version;

and ``structure``: the canary and the prompt's delimited data slot. ``preflight`` runs layers 1-5
in order on a step's data; every layer's work is linear in the text, which is at most
``MAX_TEXT_CHARS`` characters before and after normalisation (a longer one is refused with
``GuardrailInputError``)."""

from __future__ import annotations

from workflows.executions.guardrails.base import (
    MAX_TEXT_CHARS,
    Finding,
    GuardrailInputError,
    Preflight,
    Risk,
)
from workflows.executions.guardrails.characters import clean_characters, hidden_tag_text
from workflows.executions.guardrails.injection import injection_risk
from workflows.executions.guardrails.personal_data import mask_personal_data
from workflows.executions.guardrails.secret_masking import mask_secrets
from workflows.executions.guardrails.structure import build_messages, canary_leaked, new_canary
from workflows.executions.guardrails.urls import mask_urls

__all__ = [
    "DEFAULT_THRESHOLD",
    "MAX_TEXT_CHARS",
    "Finding",
    "GuardrailInputError",
    "Preflight",
    "Risk",
    "build_messages",
    "canary_leaked",
    "injection_risk",
    "new_canary",
    "preflight",
]

# The risk score at which a step goes to a person when its workspace sets no threshold (equal to
# settings.AI_RISK_THRESHOLD's default; docs/ai-controls.md has the measurement behind it).
DEFAULT_THRESHOLD = 0.35


def preflight(text: str, *, redact_pii: bool, url_allow: list[str] | None) -> Preflight:
    """The step's data made fit for the prompt's data slot, what was changed, and its risk.

    The risk is scored on the text after the character layer (plus any text spelled in hidden tag
    characters) and before masking, so that a masked link or key cannot hide an injection."""
    if not isinstance(text, str):
        raise GuardrailInputError("The data must be text.")
    if len(text) > MAX_TEXT_CHARS:
        raise GuardrailInputError(
            f"The data has {len(text):,} characters; an AI step takes at most {MAX_TEXT_CHARS:,}."
        )
    cleaned, findings = clean_characters(text)
    if len(cleaned) > MAX_TEXT_CHARS:
        # NFKC may lengthen a text up to 18 times ("ﷺ" is 18 characters): the cap holds after it too.
        raise GuardrailInputError(
            f"Normalised, the data has {len(cleaned):,} characters; an AI step takes at most {MAX_TEXT_CHARS:,}."
        )
    hidden = hidden_tag_text(text)
    risk = injection_risk(f"{cleaned}\n{hidden}" if hidden else cleaned)
    masked, found = mask_secrets(cleaned)
    findings += found
    if redact_pii:
        masked, found = mask_personal_data(masked)
        findings += found
    masked, found = mask_urls(masked, url_allow)
    findings += found
    return Preflight(text=masked, findings=findings, risk=risk)
