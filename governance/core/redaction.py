"""Redaction: credentials never reach logs, ledger data, API error bodies or error reports.

Two kinds of secret are recognised:

- **credential formats**: cloud access keys, personal access tokens, chat bot tokens and webhook
  URLs, bearer and basic authorization, ``password=``-style assignments, passwords in URLs, JWTs
  and PEM private key blocks (``PATTERNS``);
- **known secret values**: code that decrypts or receives a credential calls ``secret_register``,
  and from then on the value (and its URL-encoded, base64 and JSON-escaped forms) is redacted
  wherever it appears. Values are kept only in this process's memory, in a bounded LRU.

A match becomes ``[REDACTED:<kind>]``. In structured data (``redact_data``) a value stored under a
key that names a secret (``password``, ``api_key``, ``authorization``, ``credential``, ...) is
replaced whole; a key only *ends* in such a word to count, so ``credential_id``, ``max_tokens`` or
``token_digest_prefix`` keep their values. Data without anything to redact is returned as it is,
after one scan of its JSON text, so that the ledger's common path stays cheap.

The logging filter, the exception reporter filter and the exception reporter below apply the
same rules to log records, Django's error pages and the error e-mails sent to administrators.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

from django.template.defaultfilters import pprint
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

MARKER = "[REDACTED:{kind}]"
KIND_KNOWN = "known_secret"
KIND_FIELD = "sensitive_field"
MIN_SECRET_LENGTH = 8
MAX_SECRET_LENGTH = 16 * 1024
REGISTRY_CAPACITY = 4096
# Replacing a match can expose a new one (a neighbour no longer glued to a word); a few passes settle it.
MAX_PASSES = 4

_URLSAFE = r"[A-Za-z0-9_-]"
_NOT_REDACTED = r"(?!\[REDACTED)"
# Placed right after a pattern's first (word) character: that character starts a word. Every pattern
# begins with a plain character or a character class, so that the regular expression engine rejects
# most positions of ordinary text with one comparison per pattern.
_WORD_START = r"(?<![A-Za-z0-9_].)"
# Words whose assigned value is a secret (``password=...``, ``"api_key": ...``), by first letter.
_ASSIGNED_WORDS = {
    "a": r"pi[_-]?key|ccess[_-]?key",
    "p": r"ass(?:word|wd|phrase)|wd|rivate[_-]?key",
    "s": r"ecret|ession[_-]?id",
    "t": r"oken",
}
# Further words that make a data key sensitive (its value is replaced whole).
_KEY_ONLY_WORDS = {"a": r"uthorization", "c": r"redentials?|ookie"}
_ASSIGNMENT_VALUE = rf"[\"']?+\s*+[=:]\s*+[\"']?+(?P<v>){_NOT_REDACTED}[^\s&\"',;<>]{{1,4096}}"

# Every repetition is bounded: an attacker-supplied text (an echoed form value, a log line) then
# costs time linear in its length, never quadratic, however it repeats a pattern's prefix.
# (kind, regular expression). Where a pattern has the empty group ``(?P<v>)``, the text before it
# stays (a header name, the ``password=`` of an assignment, a URL's user name) and only the rest
# of the match is replaced.
PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "private_key",
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]{0,16384}?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|[\s\S]{0,16384})",
    ),
    ("slack_webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{1,512}"),
    (
        "discord_webhook",
        rf"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{{1,32}}/{_URLSAFE}{{1,256}}",
    ),
    ("url_password", rf"://[^\s/?#@:\"'<>]{{0,256}}:(?P<v>){_NOT_REDACTED}[^\s/?#@\"'<>]{{1,256}}(?=@)"),
    (
        "authorization",
        r"[Aa](?ai:uthorization)[\"']?+\s*+[:=]\s*+[\"']?+(?:(?ai:bearer|basic|token|bot|digest|negotiate)\s++)?+"
        rf"(?P<v>){_NOT_REDACTED}[^\s\"',;]{{1,4096}}",
    ),
    (
        "bearer_token",
        rf"[Bb]{_WORD_START}(?ai:earer)\s++(?P<v>){_NOT_REDACTED}(?=[A-Za-z0-9._~+/-]{{0,512}}\d)[A-Za-z0-9._~+/-]{{8,4096}}={{0,3}}",
    ),
    *(
        ("assignment", rf"[{letter.upper()}{letter}](?ai:{rest}){_ASSIGNMENT_VALUE}")
        for letter, rest in _ASSIGNED_WORDS.items()
    ),
    (
        "aws_access_key_id",
        rf"A{_WORD_START}(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|ROA|PKA)[A-Z0-9]{{16}}(?![A-Za-z0-9_])",
    ),
    ("github_token", rf"g{_WORD_START}h[pousr]_[A-Za-z0-9]{{36,255}}(?![A-Za-z0-9_])"),
    ("github_token", rf"g{_WORD_START}ithub_pat_[A-Za-z0-9_]{{22,255}}"),
    ("gitlab_token", rf"g{_WORD_START}l(?:pat|ptt|dt|rt)-{_URLSAFE}{{20,256}}"),
    ("slack_token", rf"x{_WORD_START}(?:ox[abprse]|app-\d)-[A-Za-z0-9-]{{10,256}}"),
    ("bot_token", rf"[0-9]{_WORD_START}[0-9]{{7,9}}:{_URLSAFE}{{35}}(?!{_URLSAFE})"),
    (
        "bot_token",
        rf"[MNO]{_WORD_START}{_URLSAFE}{{23,27}}\.{_URLSAFE}{{6}}\.{_URLSAFE}{{27,40}}(?!{_URLSAFE})",
    ),
    ("stripe_key", rf"[rs]{_WORD_START}k_(?:live|test)_[A-Za-z0-9]{{10,256}}"),
    ("stripe_key", rf"w{_WORD_START}hsec_[A-Za-z0-9]{{20,256}}"),
    (
        "api_key",
        rf"s{_WORD_START}k-(?={_URLSAFE}{{0,256}}[A-Z])(?={_URLSAFE}{{0,256}}\d){_URLSAFE}{{20,512}}",
    ),
    ("google_api_key", rf"A{_WORD_START}Iza{_URLSAFE}{{35}}(?!{_URLSAFE})"),
    ("jwt", rf"e{_WORD_START}yJ{_URLSAFE}{{5,4096}}\.{_URLSAFE}{{5,8192}}\.{_URLSAFE}{{0,1024}}"),
)


def _words(*tables: dict[str, str]) -> str:
    return "|".join(f"{letter}(?:{rest})" for table in tables for letter, rest in table.items())


# Data keys whose whole value is a secret: the key ends in one of the words.
SENSITIVE_KEY = re.compile(rf"(?ai)(?:{_words(_ASSIGNED_WORDS, _KEY_ONLY_WORDS)})$")
# In JSON text, a key ending in a key-only word, then its colon (the assigned words are patterns
# already): used only to decide whether data needs a closer look.
_SENSITIVE_JSON_KEYS = tuple(
    rf"[{letter.upper()}{letter}](?ai:{rest})\"\s*:" for letter, rest in _KEY_ONLY_WORDS.items()
)


# Cheap necessary conditions: text that meets none of them cannot match any pattern, and is left
# alone without running the combined expression (which tries every pattern at every position).
# Each is a plain substring, or a short expression that starts with a fixed string, which the
# engine finds about as fast as a substring search.
_NEEDLES = ("PRIVATE KEY", "hooks.slack.com/", "/api/webhooks/", "whsec_")
_SEPARATOR = r"[\"']?+\s*+[=:]"
# Case-insensitive words (looked for in the lower-cased text): the word, then what must follow it.
_WORD_HINTS = {
    "authorization": _SEPARATOR,
    "bearer": r"\s",
    "pass": rf"(?:word|wd|phrase){_SEPARATOR}",
    "pwd": _SEPARATOR,
    "key": _SEPARATOR,
    "secret": _SEPARATOR,
    "session": rf"[_-]?id{_SEPARATOR}",
    "token": _SEPARATOR,
}
# For data only: keys whose value is replaced whole, as they appear in JSON text.
_KEY_WORD_HINTS = {"credential": r"s?\"\s*:", "cookie": r"\"\s*:"}
_HINTS = re.compile(
    r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|ROA|PKA|Iza)|g(?:h[pousr]_|ithub_pat_|l(?:pat|ptt|dt|rt)-)"
    rf"|x(?:ox[abprse]|app)-|k(?:-|_live_|_test_)|yJ|:{_URLSAFE}{{35}}|\.{_URLSAFE}{{6}}\.{_URLSAFE}{{27}}"
)


def _word_hints(table: dict[str, str]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((word, re.compile(re.escape(word) + after)) for word, after in table.items())


_TEXT_WORDS = _word_hints(_WORD_HINTS)
_DATA_WORDS = _TEXT_WORDS + _word_hints(_KEY_WORD_HINTS)


def _may_match(text: str, words: tuple[tuple[str, re.Pattern[str]], ...] = _TEXT_WORDS) -> bool:
    """Whether any pattern might match ``text`` (never False when one does; usually False on prose)."""
    for needle in _NEEDLES:
        if needle in text:
            return True
    if "@" in text and "://" in text:
        return True
    lowered = text.lower()
    for word, hint in words:
        if word in lowered and hint.search(lowered) is not None:
            return True
    return _HINTS.search(text) is not None


def _compile_patterns(expressions: Iterable[tuple[str, str]]) -> tuple[re.Pattern[str], dict[str, str]]:
    """One alternation of every pattern, each ended by an empty group ``p<n>`` that names it.

    The alternation stays at the top level (no group around a branch), so that the engine can
    reject a branch on its first character.
    """
    branches, kinds = [], {}
    for number, (kind, expression) in enumerate(expressions):
        kinds[f"p{number}"] = kind
        branches.append(expression.replace("(?P<v>)", f"(?P<p{number}v>)") + f"(?P<p{number}>)")
    return re.compile("|".join(branches)), kinds


_PATTERN, _KINDS = _compile_patterns(PATTERNS)
_PREFILTER, _ = _compile_patterns([*PATTERNS, *(("key", key) for key in _SENSITIVE_JSON_KEYS)])
_ALL_MARKERS = "\n".join(MARKER.format(kind=kind) for kind in {*_KINDS.values(), KIND_KNOWN, KIND_FIELD})


def _replace_match(match: re.Match[str]) -> str:
    """The marker for one pattern match, after the text the pattern keeps."""
    group = match.lastgroup or ""
    value_group = f"{group}v"
    start = match.start(value_group) if value_group in _PATTERN.groupindex else -1
    kept = match.string[match.start() : start] if start >= 0 else ""
    return kept + MARKER.format(kind=_KINDS[group])


# --- known secret values ------------------------------------------------------------------------


def _encoded_forms(value: str | bytes) -> set[str]:
    """The value as it may appear in text: itself, URL-encoded, base64 (unpadded) and JSON-escaped."""
    if isinstance(value, bytes):
        try:
            text = value.decode()
        except UnicodeDecodeError:
            text = None
        raw = value
    else:
        text, raw = value, value.encode()
    forms = {
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    if text is None:
        forms.add(binascii.hexlify(raw).decode())
    else:
        forms.update(
            {
                text,
                quote(text, safe=""),
                quote_plus(text),
                json.dumps(text)[1:-1],
                json.dumps(text, ensure_ascii=False)[1:-1],
            }
        )
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


# Every form is at least MIN_SECRET_LENGTH long, so wherever one occurs in a text, one of its first
# STRIDE positions is a multiple of STRIDE, and the GRAM characters there are one of its own
# first STRIDE grams. Sampling one gram every STRIDE characters therefore finds every occurrence.
GRAM = 4
STRIDE = MIN_SECRET_LENGTH - GRAM + 1
_SAMPLE_SLICES = tuple(slice(start, start + GRAM) for start in range(0, 64 * 1024, STRIDE))


def _sampled_grams(text: str) -> Iterable[str]:
    """One gram every STRIDE characters of ``text``."""
    count = (len(text) - GRAM) // STRIDE + 1
    if count <= len(_SAMPLE_SLICES):
        return map(text.__getitem__, _SAMPLE_SLICES[: max(count, 0)])
    return (text[start : start + GRAM] for start in range(0, len(text) - GRAM + 1, STRIDE))


@dataclass(frozen=True)
class KnownIndex:
    """Where to look for known values: their leading grams, and the forms each gram starts."""

    grams: frozenset[str]
    forms_by_gram: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, forms: Iterable[str]) -> KnownIndex:
        by_gram: dict[str, set[str]] = {}
        for form in forms:
            for offset in range(STRIDE):
                by_gram.setdefault(form[offset : offset + GRAM], set()).add(form)
        return cls(frozenset(by_gram), {gram: tuple(found) for gram, found in by_gram.items()})

    def find(self, text: str) -> tuple[str, ...]:
        """The known forms that occur in ``text``, longest first (empty, cheaply, when none does)."""
        if self.grams.isdisjoint(_sampled_grams(text)):
            return ()
        hits = self.grams.intersection(_sampled_grams(text))
        found = {form for gram in hits for form in self.forms_by_gram[gram]}
        return tuple(sorted((form for form in found if form in text), key=len, reverse=True))


@lru_cache(maxsize=256)
def _literal_pattern(forms: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(form) for form in forms))


class SecretRegistry:
    """The known secret values of this process: a bounded LRU, kept only in memory.

    Its index is rebuilt on the first scan after the set of values changed; registering a value
    that is already known only refreshes its place in the LRU.
    """

    def __init__(self, capacity: int = REGISTRY_CAPACITY) -> None:
        self.capacity = capacity
        self._values: OrderedDict[str | bytes, frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()
        self._index: KnownIndex | None = None
        self._stale = False

    def __len__(self) -> int:
        return len(self._values)

    def register(self, value: str | bytes) -> None:
        """Remember ``value``; values shorter than ``MIN_SECRET_LENGTH`` or too long are ignored."""
        if not isinstance(value, str | bytes) or not MIN_SECRET_LENGTH <= len(value) <= MAX_SECRET_LENGTH:
            return
        if isinstance(value, str) and (value in _ALL_MARKERS or "[REDACTED:" in value):
            return  # a marker's own text: redacting it would never settle
        with self._lock:
            if value in self._values:
                self._values.move_to_end(value)
                return
            self._values[value] = frozenset(_encoded_forms(value))
            while len(self._values) > self.capacity:
                self._values.popitem(last=False)
            self._stale = True

    def forget(self, value: str | bytes) -> None:
        """Stop redacting ``value`` (e.g. after the credential it belonged to was revoked)."""
        with self._lock:
            if self._values.pop(value, None) is not None:
                self._stale = True

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._values.clear()
            self._stale = True

    def index(self) -> KnownIndex | None:
        """The index of every known value and its encoded forms (None when nothing is known)."""
        if not self._stale:
            return self._index
        with self._lock:
            if self._stale:
                forms = {form for value_forms in self._values.values() for form in value_forms}
                self._index = KnownIndex.of(forms) if forms else None
                self._stale = False
            return self._index


registry = SecretRegistry()


def secret_register(value: str | bytes) -> None:
    """Redact ``value`` from now on, wherever this process logs, records or reports it."""
    registry.register(value)


def secret_forget(value: str | bytes) -> None:
    """Stop redacting ``value`` in this process."""
    registry.forget(value)


# --- text and data ------------------------------------------------------------------------------


def _redact_once(text: str, known: KnownIndex | None) -> str:
    if known is not None and (forms := known.find(text)):
        text = _literal_pattern(forms).sub(MARKER.format(kind=KIND_KNOWN), text)
    return _PATTERN.sub(_replace_match, text) if _may_match(text) else text


def redact_text(text: str) -> str:
    """``text`` with known secrets and credential formats replaced by ``[REDACTED:<kind>]``.

    Returns ``text`` itself when there is nothing to redact. Redacting twice gives the same text.
    """
    known = registry.index()
    for _ in range(MAX_PASSES):
        redacted = _redact_once(text, known)
        if redacted == text:
            break
        text = redacted
    return text


_JSON = json.JSONEncoder(ensure_ascii=False, default=str, check_circular=False)


def _may_need_redaction(obj: Any, known: KnownIndex | None) -> bool:
    """Whether ``obj`` may hold something to redact, judged from its JSON text in one scan.

    Sound only when every string appears verbatim in that text, i.e. when JSON escaped nothing
    (no backslash in the text); anything else, and anything JSON cannot hold, gets the full walk.
    """
    try:
        text = _JSON.encode(obj)
    except (TypeError, ValueError, RecursionError):
        return True
    if "\\" in text:
        return True
    if _may_match(text, _DATA_WORDS) and _PREFILTER.search(text) is not None:
        return True
    return known is not None and bool(known.find(text))


def _keep_under_sensitive_key(value: Any) -> bool:
    """Values that cannot carry a secret stay even under a sensitive key (flags, absent values)."""
    return (
        value is None
        or isinstance(value, bool)
        or value == ""
        or (isinstance(value, str) and value.startswith("[REDACTED:") and value.endswith("]"))
    )


def _walk(obj: Any, by_key: bool) -> Any:
    """``obj`` redacted; containers are copied only where something inside them changed."""
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        items = [(_walk(key, by_key), _walk_value(key, value, by_key)) for key, value in obj.items()]
        changed = any(
            new[0] is not key or new[1] is not value
            for new, (key, value) in zip(items, obj.items(), strict=True)
        )
        return dict(items) if changed else obj
    if isinstance(obj, list | tuple):
        items = [_walk(item, by_key) for item in obj]
        if all(new is old for new, old in zip(items, obj, strict=True)):
            return obj
        return items if isinstance(obj, list) else tuple(items)
    return obj


def _walk_value(key: Any, value: Any, by_key: bool) -> Any:
    sensitive = by_key and isinstance(key, str) and SENSITIVE_KEY.search(key) is not None
    if sensitive and not _keep_under_sensitive_key(value):
        return MARKER.format(kind=KIND_FIELD)
    return _walk(value, by_key)


def redact_data(obj: Any, *, by_key: bool = True) -> Any:
    """``obj`` (dicts, lists, tuples, strings, scalars) with secrets redacted, never changed in place.

    Keys and string values are redacted like text; with ``by_key`` a value under a sensitive key
    is replaced whole. When nothing needs redacting, ``obj`` itself is returned; otherwise a new
    structure, sharing the parts that did not change.
    """
    known = registry.index()
    if not _may_need_redaction(obj, known):
        return obj
    return _walk(obj, by_key)


# --- logging ------------------------------------------------------------------------------------


class RedactingFilter(logging.Filter):
    """Redact a log record before any handler sees it: message, arguments, exception and stack.

    The message is formatted first (so that secrets in arguments are caught), then redacted, and
    the arguments are dropped. Exception text is formatted here, so handlers reuse the redacted
    text instead of formatting the traceback again.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep what it says, redacted, without formatting it
            message = f"{record.msg!s} (arguments: {record.args!r})"
        record.msg, record.args = redact_text(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        record._redacted = True
        return True


# --- error reports ------------------------------------------------------------------------------


class _Repr:
    """Stands for a value in an error report: shows already-redacted text as the value's repr."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _redacted_value(value: Any) -> Any:
    """``value`` as an error report may show it: unchanged, or its redacted representation."""
    if isinstance(value, str):
        return redact_text(value)
    shown = pprint(value)
    redacted = redact_text(shown)
    return value if redacted == shown else _Repr(redacted)


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus redaction of known secrets and credential formats everywhere it looks.

    Unlike the parent's decorator-driven cleansing, redaction applies with DEBUG on as well: frame
    variables, POST data, request headers, cookies and settings are all redacted.
    """

    hidden_settings = re.compile(
        "API|AUTH|KEY|SECRET|TOKEN|PASS|PIN|CREDENTIAL|SIGNATURE|PRIVATE|HTTP_COOKIE|SESSION|DSN", flags=re.I
    )

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        return redact_text(cleansed) if isinstance(cleansed, str) else cleansed

    def get_post_parameters(self, request: Any) -> dict[str, Any]:
        parameters = super().get_post_parameters(request)
        return {
            key: self.cleansed_substitute if SENSITIVE_KEY.search(str(key)) else _redacted_value(value)
            for key, value in parameters.items()
        }

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Iterable[tuple[str, Any]]:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [
            (name, self.cleansed_substitute if SENSITIVE_KEY.search(name) else _redacted_value(value))
            for name, value in variables
        ]


class RedactingExceptionReporter(ExceptionReporter):
    """Django's exception reporter, with the exception message, URL, query string, source lines
    and chained exceptions redacted as well (the filter covers variables, POST, headers, settings)."""

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        for key in ("exception_value", "exception_notes", "request_insecure_uri", "unicode_hint"):
            if isinstance(data.get(key), str):
                data[key] = redact_text(data[key])
        if "request_GET_items" in data:
            data["request_GET_items"] = [
                (key, self.filter.cleansed_substitute if SENSITIVE_KEY.search(key) else redact_text(value))
                for key, value in data["request_GET_items"]
            ]
        for frame in data.get("frames", []):
            _redact_frame(frame)
        return data


def _redact_frame(frame: dict[str, Any]) -> None:
    """Redact a traceback frame's source lines and chained exception in place."""
    for key in ("pre_context", "post_context"):
        if frame.get(key):
            frame[key] = [redact_text(line) for line in frame[key]]
    if frame.get("context_line"):
        frame["context_line"] = redact_text(frame["context_line"])
    if frame.get("exc_cause") is not None:
        cause = str(frame["exc_cause"])
        redacted = redact_text(cause)
        if redacted != cause:
            frame["exc_cause"] = redacted
