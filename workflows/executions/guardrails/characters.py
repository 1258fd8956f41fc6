"""Layer 1, characters: NFKC normalisation; invisible, bidirectional-control, private and
unassigned characters removed (they hide text from a reviewer, or reorder it on screen, while the
model still reads it). Line breaks and tabs stay. One pass over the text."""

from __future__ import annotations

import unicodedata
from collections import Counter

from workflows.executions.guardrails.base import Finding

LAYER = "characters"
KEEP = {"\n", "\t"}
# The Unicode "tag" block spells ASCII invisibly (U+E0020..U+E007E = " ".."~"): used to smuggle
# instructions past people. Removed like the rest, and given back to the risk score as text.
TAG_FIRST, TAG_LAST = 0xE0000, 0xE007F
BIDI = {"\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}
# Variation selectors (Mn, not Cf) also carry hidden bytes in "emoji smuggling".
VARIATION = {*map(chr, range(0xFE00, 0xFE10)), *map(chr, range(0xE0100, 0xE01F0))}


def _kind(char: str) -> str | None:
    """Why ``char`` goes (None: it stays)."""
    if char in KEEP:
        return None
    if char in BIDI:
        return "bidi-control"
    code = ord(char)
    if TAG_FIRST <= code <= TAG_LAST:
        return "tag-character"
    if char in VARIATION:
        return "variation-selector"
    category = unicodedata.category(char)
    if category == "Cf":
        return "invisible"
    if category == "Cc":
        return "control"
    if category == "Cs":
        return "lone-surrogate"
    if category in {"Co", "Cn"}:
        return "private-or-unassigned"
    return None


def hidden_tag_text(text: str) -> str:
    """The ASCII spelled by Unicode tag characters in ``text`` (empty when there are none)."""
    return "".join(chr(ord(c) - TAG_FIRST) for c in text if TAG_FIRST + 0x20 <= ord(c) <= TAG_FIRST + 0x7E)


def clean_characters(text: str) -> tuple[str, list[Finding]]:
    """``text`` NFKC-normalised without the characters ``_kind`` names, and one finding per kind
    removed (with its count)."""
    # Lone surrogates first: NFKC keeps them, and no encoder takes them.
    removed: Counter[str] = Counter()
    kept = []
    for char in unicodedata.normalize("NFKC", _without_surrogates(text, removed)):
        kind = _kind(char)
        if kind is None:
            kept.append(char)
        else:
            removed[kind] += 1
    findings = [Finding(LAYER, kind, f"{count} removed") for kind, count in sorted(removed.items())]
    return "".join(kept), findings


def _without_surrogates(text: str, removed: Counter[str]) -> str:
    cleaned = text.encode("utf-8", "ignore").decode("utf-8") if not text.isascii() else text
    if len(cleaned) != len(text):
        removed["lone-surrogate"] += len(text) - len(cleaned)
    return cleaned
