"""Layer 2, secrets: credentials, keys and tokens masked with detect-secrets' plugins (offline,
no baseline file, no git). Pattern plugins mask their whole match up to the end of the token;
the keyword and high-entropy plugins mask the value they report. Each plugin only ever sees one
line piece of at most ``WINDOW`` characters, so the work is linear in the text."""

from __future__ import annotations

import re
from functools import lru_cache

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.settings import default_settings

from workflows.executions.guardrails.base import Finding, apply_masks, windows

LAYER = "secrets"
WINDOW, OVERLAP = 1_000, 200
# Public IP addresses are no secret (the personal data layer may mask them); private keys span lines.
SKIPPED = {"IPPublicDetector", "PrivateKeyDetector"}  # the latter: whole blocks, below
TOKEN_TAIL = re.compile(r"[A-Za-z0-9_\-.+/=]{0,400}")
# A PEM private key spans lines: masked whole, from its BEGIN line to its END line (or the text's end).
PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
PRIVATE_KEY_END = re.compile(r"-----END [A-Z ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
# Key formats newer than detect-secrets 1.5's plugins (OpenAI project keys, Anthropic keys).
EXTRA = ("ModernApiKey", re.compile(r"\bsk-(?:proj|ant|svcacct|admin)-[A-Za-z0-9_\-]{20,400}"))


@lru_cache(maxsize=1)
def plugins() -> tuple:
    """One instance of each detect-secrets plugin but ``SKIPPED``, with its default settings."""
    with default_settings():
        classes = get_mapping_from_secret_type_to_class().values()
        return tuple(
            cls() for cls in sorted(classes, key=lambda c: c.__name__) if cls.__name__ not in SKIPPED
        )


def _spans_in(piece: str) -> list[tuple[int, int, str]]:
    spans = []
    for plugin in plugins():
        name = plugin.__class__.__name__
        if isinstance(plugin, RegexBasedDetector):
            for pattern in plugin.denylist:
                for match in pattern.finditer(piece):
                    spans.append((match.start(), TOKEN_TAIL.match(piece, match.end()).end(), name))
        else:
            values = {
                found.secret_value
                for found in plugin.analyze_line(filename="data", line=piece, line_number=1)
            }
            for value in values - {None, ""}:
                start = piece.find(value)
                while start != -1:
                    spans.append((start, start + len(value), name))
                    start = piece.find(value, start + len(value))
    name, pattern = EXTRA
    spans.extend((match.start(), match.end(), name) for match in pattern.finditer(piece))
    return spans


def _private_key_spans(text: str) -> list[tuple[int, int, str]]:
    """Each PEM private key block; every character is read at most twice (one BEGIN search and
    one END search from there)."""
    spans, position = [], 0
    while begin := PRIVATE_KEY_BEGIN.search(text, position):
        end = PRIVATE_KEY_END.search(text, begin.end())
        position = end.end() if end else len(text)
        spans.append((begin.start(), position, "PrivateKeyDetector"))
    return spans


def secret_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, plugin) of every secret in ``text``, line by line in bounded pieces."""
    spans = _private_key_spans(text)
    line_start = 0
    for line in text.split("\n"):
        for offset, piece in windows(line, size=WINDOW, overlap=OVERLAP):
            base = line_start + offset
            spans.extend((base + start, base + end, name) for start, end, name in _spans_in(piece))
        line_start += len(line) + 1
    return spans


def mask_secrets(text: str) -> tuple[str, list[Finding]]:
    """``text`` with each secret replaced by ``[SECRET]``, and a finding per plugin that found one."""
    spans = secret_spans(text)
    counts: dict[str, int] = {}
    for _, _, name in spans:
        counts[name] = counts.get(name, 0) + 1
    masked = apply_masks(text, [(start, end, "SECRET") for start, end, _ in spans])
    return masked, [Finding(LAYER, name, f"{count} masked") for name, count in sorted(counts.items())]
