"""Prefixed bearer tokens and the machine principals they sign in as.

A token reads ``<mark><prefix>_<secret>`` (``gpsa_…`` for service accounts, ``gpscim_…`` for
SCIM): the 8-hex-digit prefix is public and finds the stored row, the secret is 256 random bits
of which only the SHA-256 digest is stored (a fast hash suits 256 random bits). The plaintext
exists once, in the value ``TokenFormat.mint`` returns; it is never stored, logged or recorded.

A machine principal is what the decision point and the ledger see of a signed-in token: never a
user (``is_service_account`` sends every access question to the decision point's machine rule),
with no password, roles or grants and no way into the control panel.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

_UNKNOWN_DIGEST = "0" * 64


def token_digest(secret: str) -> str:
    """SHA-256 hex of a token's secret part."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def digest_matches(stored: str | None, secret: str) -> bool:
    """Whether ``secret`` hashes to ``stored``, compared in constant time; a missing row (None)
    costs the same and never matches."""
    matches = hmac.compare_digest(stored or _UNKNOWN_DIGEST, token_digest(secret))
    return matches and stored is not None


class TokenRefusedError(Exception):
    """A token was refused; ``reason`` is for the ledger, never for the caller, who reads only
    ``refused_message``."""

    refused_message = "The token was refused."

    def __init__(self, reason: str):
        super().__init__(self.refused_message)
        self.reason = reason


@dataclass(frozen=True)
class MintedToken:
    """A new token: what to store (prefix, digest) and the plaintext, shown once and dropped."""

    prefix: str
    digest: str
    plaintext: str = field(repr=False)


@dataclass(frozen=True)
class ParsedToken:
    """A presented token split into its parts, or the reason it is malformed (with the prefix
    when one can still be read, for the ledger)."""

    prefix: str
    secret: str = field(default="", repr=False)
    refusal: str = ""


@dataclass(frozen=True)
class TokenFormat:
    """One kind of token, named by its public ``mark`` (``"gpsa_"``)."""

    mark: str

    @cached_property
    def pattern(self) -> re.Pattern:
        """A whole token, with its ``prefix`` and ``secret`` groups."""
        return re.compile(
            rf"^{re.escape(self.mark)}(?P<prefix>[0-9a-f]{{8}})_(?P<secret>[A-Za-z0-9_-]{{43}})$"
        )

    @cached_property
    def _loose(self) -> re.Pattern:
        return re.compile(rf"^{re.escape(self.mark)}(?P<prefix>[0-9a-f]{{8}})_")

    def mint(self, *, prefix_taken: Callable[[str], bool]) -> MintedToken:
        """A fresh token whose prefix ``prefix_taken`` says is free."""
        prefix = secrets.token_hex(4)
        while prefix_taken(prefix):
            prefix = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        return MintedToken(
            prefix=prefix, digest=token_digest(secret), plaintext=f"{self.mark}{prefix}_{secret}"
        )

    def parse(self, token: str | None) -> ParsedToken:
        """Split a presented token; ``refusal`` is "missing" or "malformed" when it cannot be."""
        match = self.pattern.match(token or "")
        if match is not None:
            return ParsedToken(prefix=match["prefix"], secret=match["secret"])
        loose = self._loose.match(token or "")
        return ParsedToken(
            prefix=loose["prefix"] if loose else "", refusal="malformed" if token else "missing"
        )

    def shows(self, prefix: str) -> str:
        """How a token is named where it may be seen: its mark and public prefix."""
        return f"{self.mark}{prefix}"


@dataclass(frozen=True, kw_only=True)
class MachinePrincipal:
    """A signed-in token, as a request's ``user``: confined to its organisation, and to its
    workspace when it has one, with the actions its scopes allow and nothing else."""

    pk: int
    name: str
    organization_id: int
    workspace_id: int | None
    scopes: tuple[str, ...]
    allowed_actions: frozenset[str]
    token_prefix: str
    is_active: bool = True

    is_service_account: ClassVar[bool] = True
    is_authenticated: ClassVar[bool] = True
    is_anonymous: ClassVar[bool] = False
    is_staff: ClassVar[bool] = False
    is_superuser: ClassVar[bool] = False

    @property
    def label(self) -> str:
        """How the ledger names it (never the token)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.label
