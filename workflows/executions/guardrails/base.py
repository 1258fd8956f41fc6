"""What every guardrail layer returns, and the bounded windows that keep each layer linear."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# The largest data text an AI step accepts (characters, after the expression gave it): more is a
# field-level refusal, not a slower check.
MAX_TEXT_CHARS = 60_000


class GuardrailInputError(ValueError):
    """The data cannot be checked: not text, or longer than ``MAX_TEXT_CHARS``."""


@dataclass(frozen=True)
class Finding:
    """One thing a layer found and changed. ``detail`` names it (a type, a count, a host) and never
    holds the secret or personal data itself."""

    layer: str
    kind: str
    detail: str


@dataclass(frozen=True)
class Risk:
    """The injection risk of a text: a score in 0..1, why, and the rules and classifier version."""

    score: float
    reasons: list[str]
    version: str


@dataclass(frozen=True)
class Preflight:
    """The text that may go into the prompt's data slot, what was changed on the way, and its risk."""

    text: str
    findings: list[Finding]
    risk: Risk


def windows(text: str, *, size: int, overlap: int) -> Iterator[tuple[int, str]]:
    """(offset, piece) of ``text`` in pieces of at most ``size`` characters, consecutive pieces
    sharing ``overlap`` characters: anything up to ``overlap`` characters long lies wholly inside
    one piece, and the pieces add up to at most ``len(text) * size / (size - overlap)`` characters.
    A slow component only ever sees one piece, so its work grows linearly with the text."""
    if overlap >= size:
        raise ValueError("overlap must be smaller than size")
    if len(text) <= size:
        yield 0, text
        return
    step = size - overlap
    for start in range(0, len(text) - overlap, step):
        yield start, text[start : start + size]


def apply_masks(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with each (start, end, label) span replaced by ``[label]``; overlapping spans merge
    (the first label wins)."""
    if not spans:
        return text
    merged: list[list] = []
    for start, end, label in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, label])
    parts, position = [], 0
    for start, end, label in merged:
        parts.append(text[position:start])
        parts.append(f"[{label}]")
        position = end
    parts.append(text[position:])
    return "".join(parts)
