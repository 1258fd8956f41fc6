"""Layer 4, links: every URL whose host is not on the step's ``url_allow`` list is masked, so that
the model can neither be sent to, nor echo, an attacker's link (markdown-image exfiltration and
phishing). Deny by default: no list masks every URL. A list entry allows its host and sub-domains.
The patterns are a literal start then one bounded character class: linear."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from workflows.executions.guardrails.base import Finding, apply_masks

LAYER = "urls"
URL = re.compile(
    r"(?i)\b(?:(?:https?|ftp|wss?|file|data|javascript):(?://)?|www\.)[^\s<>\"'`()\[\]{}|\\^]{1,2048}"
)
TRAILING = ".,;:!?"


def _host(url: str) -> str:
    candidate = url if "://" in url else "http://" + url
    try:
        host = urlsplit(candidate).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".").lower()


def allowed(url: str, allow: list[str]) -> bool:
    """Whether the URL's host is an entry of ``allow`` or a sub-domain of one (http(s) only)."""
    if not re.match(r"(?i)(?:https?://|www\.)", url):
        return False
    host = _host(url)
    return bool(host) and any(
        host == entry or host.endswith("." + entry)
        for entry in (e.strip().lower().rstrip(".") for e in allow)
        if entry
    )


def mask_urls(text: str, allow: list[str] | None) -> tuple[str, list[Finding]]:
    """``text`` with each URL outside ``allow`` replaced by ``[URL]``, and one finding with the count."""
    spans = []
    for match in URL.finditer(text):
        url = match.group().rstrip(TRAILING)
        if not allowed(url, allow or []):
            spans.append((match.start(), match.start() + len(url), "URL"))
    if not spans:
        return text, []
    return apply_masks(text, spans), [Finding(LAYER, "url-not-allowed", f"{len(spans)} masked")]
