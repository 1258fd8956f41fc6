"""Throttling failed token attempts, counted in the cache (Redis in production, see CACHE_URL).

A ``FailureThrottle`` counts the failures of one kind of credential (SCIM tokens, service-account
tokens) per *dimension* — the token's public prefix and the client address — over a sliding
window. At ``TOKEN_THROTTLE_FAILURES`` failures within ``TOKEN_THROTTLE_WINDOW_SECONDS`` the value
is locked out for ``TOKEN_THROTTLE_LOCKOUT_SECONDS``. A locked *address* is refused with 429 and
``Retry-After`` before any token is looked up. A locked *prefix* refuses only wrong secrets: a
prefix is no secret (it is shown and logged), so whoever knows one could otherwise lock its
holder out; the caller checks the token and answers 429 only when it fails. Only failures count.
IPv6 addresses count per /64 (one subscriber's network), IPv4 addresses one by one. ``failed``
says which lockouts *began* with this failure, so that the caller records each lockout once, not
each refused attempt.

Cache keys carry a SHA-256 digest of the value, never the value itself. The kernel records
nothing: the owning app writes its ledger event.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

PREFIX = "prefix"
ADDRESS = "address"


@dataclass(frozen=True)
class Lockout:
    """One value locked out: which dimension, until when (epoch seconds), after how many failures."""

    dimension: str
    until: float
    failures: int

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.until - time.time()))

    def as_record(self, *, prefix: str, address: str | None) -> dict:
        """The lockout as a ledger event's data: what was locked, for which prefix and address,
        after how many failures, for how long."""
        return {
            "locked": self.dimension,
            "prefix": prefix,
            "address": address or "",
            "failures": self.failures,
            "retry_after_seconds": self.retry_after,
        }


def address_key(address: str) -> str:
    """What an address counts as: an IPv6 address its /64 (an IPv4-mapped one the IPv4 address),
    anything else itself."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def _limits() -> tuple[int, int, int]:
    return (
        settings.TOKEN_THROTTLE_FAILURES,
        settings.TOKEN_THROTTLE_WINDOW_SECONDS,
        settings.TOKEN_THROTTLE_LOCKOUT_SECONDS,
    )


@dataclass(frozen=True)
class FailureThrottle:
    """The failure counters of one kind of credential (``name``: "scim", "service_account")."""

    name: str

    def _key(self, dimension: str, value: str, part: str) -> str:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"throttle:{self.name}:{dimension}:{digest}:{part}"

    @staticmethod
    def _values(prefix: str | None, address: str | None) -> list[tuple[str, str]]:
        counted = address_key(address) if address else None
        return [(dimension, value) for dimension, value in ((PREFIX, prefix), (ADDRESS, counted)) if value]

    def locked(self, *, prefix: str | None, address: str | None) -> Lockout | None:
        """The lockout in force for this prefix or this address (the longer one), or None. Ask
        with ``prefix=None`` before looking a token up (an address lockout refuses at once), and
        with ``address=None`` after a token failed (a prefix lockout refuses wrong secrets only)."""
        found = []
        for dimension, value in self._values(prefix, address):
            held = cache.get(self._key(dimension, value, "locked"))
            if held is not None and held[0] > time.time():
                found.append(Lockout(dimension=dimension, until=held[0], failures=held[1]))
        return max(found, key=lambda lockout: lockout.until) if found else None

    def failed(self, *, prefix: str | None, address: str | None) -> list[Lockout]:
        """Count one failure against the prefix and the address; return the lockouts that begin now."""
        limit, window, lockout_seconds = _limits()
        begun = []
        for dimension, value in self._values(prefix, address):
            counter = self._key(dimension, value, "failures")
            cache.add(counter, 0, timeout=window)
            try:
                failures = cache.incr(counter)
            except ValueError:  # expired between add and incr: this failure starts a new window
                cache.set(counter, 1, timeout=window)
                failures = 1
            if failures >= limit:
                until = time.time() + lockout_seconds
                # add() is atomic: of concurrent failures reaching the limit, one begins the lockout.
                if cache.add(
                    self._key(dimension, value, "locked"), (until, failures), timeout=lockout_seconds
                ):
                    cache.delete(counter)
                    begun.append(Lockout(dimension=dimension, until=until, failures=failures))
        return begun

    def clear(self, *, prefix: str | None = None, address: str | None = None) -> None:
        """Forget the failures and any lockout of this prefix and address (an administrator's unlock)."""
        for dimension, value in self._values(prefix, address):
            cache.delete_many([self._key(dimension, value, part) for part in ("failures", "locked")])
