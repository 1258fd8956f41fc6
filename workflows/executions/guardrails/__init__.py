# PLACEHOLDER: the real guardrails replace this module before release.
import re
import secrets
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    layer: str
    kind: str
    detail: str


@dataclass(frozen=True)
class Risk:
    score: float
    reasons: list
    version: str


@dataclass(frozen=True)
class Preflight:
    text: str
    findings: list
    risk: Risk


def injection_risk(text):
    hit = "ignore all previous instructions" in text.lower()
    return Risk(0.9 if hit else 0.05, ["rule:ignore-previous"] if hit else [], "stub-1")


def preflight(text, *, redact_pii, url_allow):
    text = unicodedata.normalize("NFKC", text)
    return Preflight(text, [], injection_risk(text))


def new_canary():
    return "cn-" + secrets.token_hex(8)


def canary_leaked(canary, output):
    return canary.lower() in re.sub(r"\s+", "", output.lower())


def build_messages(*, system, template, data, canary):
    return [
        {"role": "system", "content": f"{system}\nCanary: {canary}"},
        {"role": "user", "content": f"{template}\n<data>\n{data}\n</data>"},
    ]
