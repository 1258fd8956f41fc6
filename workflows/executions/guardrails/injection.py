"""Layer 5, the injection risk score: rules plus the classifier, with their version.

The rules read the text lower-cased with every run of whitespace made one space, and each is a
fixed phrase with bounded gaps (no nested or unbounded repetition): each runs in linear time.
A rule names a pattern that ordinary business text does not use — "ignore my previous email" is
not "ignore all previous instructions" — and carries a weight; the classifier gives a probability.
They combine as independent signals: score = 1 − (1 − p) × Π(1 − weight of each rule that fired).
Neither is the gate alone (the issue's research: rules ≈41 % detection, an embedding classifier
70–75 % false alarms on business e-mail); the score routes a step to a person, it blocks nothing."""

from __future__ import annotations

import re

from workflows.executions.guardrails.base import Risk
from workflows.executions.guardrails.classifier import classifier_probability, model

RULES_VERSION = "rules-1"
SPACES = re.compile(r"\s+")
_G = r"(?: [\w'-]{1,20}){0,3}"  # up to three words in between

RULES: tuple[tuple[str, float, re.Pattern], ...] = tuple(
    (name, weight, re.compile(pattern))
    for name, weight, pattern in (
        ("ignore-instructions", 0.8,
         rf"\b(?:ignore|disregard|forget|override|bypass|skip)(?: all| any| every| the| your| my| of)?{_G} "
         r"(?:previous|prior|above|earlier|preceding|initial|original|system|existing)"
         r"(?: [\w'-]{1,20}){0,2} (?:instructions?|prompts?|rules|guidelines|directives|commands|constraints|context)\b"),
        ("new-instructions", 0.6,
         r"\b(?:new|updated|revised|real|actual|important|urgent) (?:important |system |primary )?(?:instructions?|directives?|task)"
         r" ?(?:\*|:|!|from (?:the )?(?:admin|administrator|developer|system|operator))"),
        ("role-override", 0.5,
         r"\b(?:you are now|from now on,? you (?:are|will)|act as|pretend (?:to be|you are)|roleplay as)"
         r"(?: an?| the)?(?: [\w'-]{1,20}){0,3} (?:dan|ai|assistant|model|chatbot|jailbroken|unfiltered|uncensored|evil|developer mode)\b"),
        ("jailbreak-persona", 0.6,
         r"\b(?:do anything now|developer mode (?:enabled|output)|jailbreak(?:en|ed)?|dan mode|no (?:ethical|moral) "
         r"(?:guidelines|restrictions|limits)|without (?:any )?(?:restrictions|filters|censorship))\b"),
        ("prompt-extraction", 0.6,
         r"\b(?:reveal|repeat|print|show|display|output|paste|tell me|give me|what (?:is|are|were))(?: me)?(?: all| the| your| exactly)?"
         r"(?: [\w'-]{1,20}){0,3} (?:system (?:prompt|message)|initial (?:prompt|instructions)|hidden (?:prompt|instructions)"
         r"|(?:instructions|prompt) (?:you were given|above)|text above)\b"),
        ("fake-turn", 0.5,
         r"(?:^|\n| )(?:###? ?)?(?:system|assistant|admin|developer) ?(?:message|prompt|note|override)? ?: ?(?:you|the assistant|ignore|new)\b"
         r"|<\|?(?:im_start|im_end|system|endoftext)\|?>|\[/?inst\]|</?(?:system|data)>|end untrusted data"),
        ("exfiltration-link", 0.5,
         r"!\[[^\]\n]{0,100}\]\((?:https?:)?//[^)\s]{1,500}[?&][^)\s=]{1,50}=|(?:append|include|add)(?: [\w'-]{1,20}){0,4} "
         r"(?:to|in) (?:the |this )?(?:url|link|image)"),
        ("obfuscated-payload", 0.3,
         r"\b(?:decode|base64|rot13|hex)(?: [\w'-]{1,20}){0,3} (?:and|then) (?:follow|execute|run|obey|do)\b"),
    )
)  # fmt: skip


def rule_hits(text: str) -> list[tuple[str, float]]:
    """(name, weight) of each rule that matches ``text``."""
    flat = SPACES.sub(" ", text.lower())
    return [(name, weight) for name, weight, pattern in RULES if pattern.search(flat)]


def risk_version() -> str:
    return f"{RULES_VERSION}+{model().version}"


def injection_risk(text: str) -> Risk:
    """The injection risk of ``text`` (already through the character layer)."""
    hits = rule_hits(text)
    probability = classifier_probability(text)
    remaining = 1 - probability
    for _, weight in hits:
        remaining *= 1 - weight
    reasons = [f"rule:{name}" for name, _ in hits] + [f"classifier:{probability:.2f}"]
    return Risk(score=round(1 - remaining, 4), reasons=reasons, version=risk_version())
