"""Which addresses the server may fetch from: https only, no credentials in the URL, no internal address.

Hosts are parsed as strictly as the clients that would connect to them: an IPv4 address in any
spelling (``2130706433``, ``0177.0.0.1``, ``0x7f.1``) is that address, an IPv6 address that carries
an IPv4 one (mapped, compatible, 6to4, NAT64) is judged by it, and a host name by every address
it resolves to. Name resolution has a deadline of its own (``OUTBOUND_DNS_TIMEOUT`` seconds).

Refusals are lifted by an allow-list: the deployment's (``OUTBOUND_ALLOW_LIST``, set by the
operator) and the organisation's, read from the sources higher floors register with
``register_allow_list_source`` (integrations register their ``NetworkAllowRule`` rows). Plain
``http://`` is refused unless the host is on the operator's ``OUTBOUND_ALLOW_PLAIN_HTTP`` list.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
# An allow-list source: the destinations (host names, or networks in CIDR notation) an
# organisation (its id) has allow-listed.
AllowListSource = Callable[[Any], Iterable[str]]

MAX_URL_LENGTH = 2048
DEFAULT_DNS_TIMEOUT = 5.0
_DEFAULT_PORTS = {"https": 443, "http": 80}
_ALLOW_LIST_HINT = "an administrator must allow-list it"

# Instance metadata services hand out cloud credentials: the classic target of server-side
# request forgery. Only an allow-list rule naming exactly one of these addresses lifts them.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(text)
    for text in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
    )
)
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)

# In order: the first range an address falls in names it in the refusal.
_INTERNAL_RANGES: tuple[tuple[str, tuple[Network, ...]], ...] = tuple(
    (kind, tuple(ipaddress.ip_network(cidr) for cidr in cidrs))
    for kind, cidrs in (
        ("an unspecified ('this network') address", ("0.0.0.0/8", "::/128")),
        ("a loopback address", ("127.0.0.0/8", "::1/128")),
        ("a link-local address", ("169.254.0.0/16", "fe80::/10")),
        ("a private address", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
        ("a shared (carrier-grade NAT) address", ("100.64.0.0/10",)),
        ("a multicast address", ("224.0.0.0/4", "ff00::/8")),
        ("a reserved address", ("240.0.0.0/4", "fec0::/10")),
        # Local-use NAT64 (RFC 8215): translates to IPv4 addresses of the operator's choosing.
        ("a local-use translation (NAT64) address", ("64:ff9b:1::/48",)),
    )
)
# IPv6 forms that carry an IPv4 address in their last 32 bits (mapped ones are unwrapped apart).
# SIIT (``::ffff:0:a.b.c.d``) translates to IPv4 on networks that run it: judged by the IPv4
# address it carries, like the well-known NAT64 prefix.
_EMBEDDING_IPV4 = (
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
)

_DECIMAL = re.compile(r"[0-9]+\Z")
_HEXADECIMAL = re.compile(r"0x[0-9a-f]*\Z")
_OCTAL = re.compile(r"0[0-7]+\Z")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")


@dataclass(frozen=True)
class CheckedEndpoint:
    """A URL that passed the check, with the addresses it may be reached at.

    ``host`` is the ASCII host name (or the address) for SNI, certificate checks and the Host
    header; ``target`` the path and query to request; ``addresses`` are connected to as they are.
    ``scheme`` is ``https`` unless the operator lets this host be reached over plain ``http``.
    """

    url: str
    host: str
    port: int
    target: str
    addresses: tuple[Address, ...]
    allow_listed: bool = False
    scheme: str = "https"

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def shown(self) -> str:
        """The URL without its query (which may hold a token): safe for messages and the ledger."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == _DEFAULT_PORTS[self.scheme] else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.target.split('?', 1)[0]}"


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [info[4][0] for info in infos]


def endpoint_check(
    url: str, *, organization: Any, resolver: Resolver | None = None, require_resolution: bool = True
) -> CheckedEndpoint:
    """Return the checked endpoint of ``url``, or raise ``ValidationError`` saying why it is refused.

    ``organization`` (an Organization, its id, or None) decides which allow-list rules apply.
    With ``require_resolution=False`` (checking a setting before anything is fetched) a host name
    that does not resolve now passes with no addresses; one that resolves is judged by its
    addresses. Every fetch checks again, with resolution required.
    """
    scheme, host, port, target = _split_url(url)
    rules = _AllowList(organization)
    if isinstance(host, str):
        name: str | None = host
        if name in METADATA_HOSTS and not rules.names(name):
            raise ValidationError(f"{name} is a cloud metadata service; {_ALLOW_LIST_HINT}.")
        try:
            addresses = _resolve(name, port, resolver or system_resolver)
        except ValidationError:
            if require_resolution:
                raise
            addresses = ()
        host_text = name
    else:
        name, addresses, host_text = None, (host,), str(host)
    if scheme == "http" and not _plain_http_allowed(name, addresses):
        raise ValidationError("Only https:// endpoints are allowed.")
    lifted = False
    for each in addresses:
        lifted |= _check_address(each, name=name, rules=rules)
    return CheckedEndpoint(url, host_text, port, target, addresses, allow_listed=lifted, scheme=scheme)


def _split_url(url: str) -> tuple[str, str | Address, int, str]:
    """Scheme, host (a name or an address), port and request target of ``url``; refused when malformed."""
    if not isinstance(url, str) or not url:
        raise ValidationError("Enter the endpoint URL.")
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValidationError("The URL contains spaces or control characters.")
    if "\\" in url:
        raise ValidationError("The URL contains a backslash; use forward slashes.")
    try:
        parts = urlsplit(url)
    except ValueError:
        hint = ": the address in brackets is not a valid IPv6 address" if "[" in url else ""
        raise ValidationError(f"The URL is malformed{hint}.") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or (scheme == "http" and not any(_plain_http_hosts())):
        raise ValidationError("Only https:// endpoints are allowed.")
    if "@" in parts.netloc:
        raise ValidationError(
            "User names and passwords in the URL are not allowed; store them as a credential."
        )
    host_text, port = _split_netloc(parts.netloc, _DEFAULT_PORTS[scheme])
    host = _parse_host(host_text)
    try:
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        if parts.query:
            target += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    except UnicodeEncodeError:
        raise ValidationError("The URL contains characters that cannot be encoded.") from None
    return scheme, host, port, target


def _split_netloc(netloc: str, default_port: int) -> tuple[str, int]:
    if not netloc:
        raise ValidationError("The URL has no host.")
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise ValidationError("The URL is malformed: an IPv6 address is not closed with ].")
        host, rest = netloc[: end + 1], netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValidationError("The URL is malformed after the IPv6 address.")
        port_text = rest[1:]
    elif netloc.count(":") > 1:
        raise ValidationError("Put an IPv6 address in brackets, e.g. https://[2001:db8::1]/.")
    else:
        host, _, port_text = netloc.partition(":")
    if not port_text:
        return host, default_port
    if not _PORT.match(port_text) or not 0 < int(port_text) < 65536:
        raise ValidationError(f"{port_text!r} is not a valid port (1–65535).")
    return host, int(port_text)


def _parse_host(host: str) -> str | Address:
    """The host as an address (in any spelling an HTTP client would accept) or a checked name."""
    if host.startswith("["):
        inner = host[1:-1]
        if "%" in inner:
            raise ValidationError("IPv6 zone identifiers (%) are not allowed in endpoint URLs.")
        try:
            return ipaddress.IPv6Address(inner)
        except ValueError:
            raise ValidationError(f"{inner} is not a valid IPv6 address.") from None
    if not host:
        raise ValidationError("The URL has no host.")
    if "%" in host:
        raise ValidationError("Percent-encoded host names are not allowed.")
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValidationError(f"{host} is not a valid host name.") from None
    ascii_host = ascii_host.removesuffix(".")
    labels = ascii_host.split(".")
    if _DECIMAL.match(labels[-1]) or _HEXADECIMAL.match(labels[-1]):
        return _parse_ipv4(ascii_host)
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValidationError(f"{host} is not a valid host name.")
    return ascii_host


def _parse_ipv4(host: str) -> ipaddress.IPv4Address:
    """An IPv4 address as browsers and inet_aton read it: 1 to 4 parts, each decimal, octal
    (leading 0) or hexadecimal (0x), the last filling the remaining bytes."""
    parts = host.split(".")
    numbers = [_ipv4_part(part) for part in parts] if len(parts) <= 4 else [None]
    if any(number is None for number in numbers) or any(number > 255 for number in numbers[:-1]):
        raise ValidationError(f"{host} is not a valid IPv4 address.")
    if numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValidationError(f"{host} is not a valid IPv4 address.")
    value = numbers[-1] + sum(number * 256 ** (3 - index) for index, number in enumerate(numbers[:-1]))
    return ipaddress.IPv4Address(value)


def _ipv4_part(part: str) -> int | None:
    if _HEXADECIMAL.match(part):
        return int(part[2:] or "0", 16)
    if _OCTAL.match(part):
        return int(part, 8)
    if _DECIMAL.match(part) and not (len(part) > 1 and part.startswith("0")):
        return int(part)
    return None


# Lookups run here so that each has a deadline: getaddrinfo itself has none the caller controls.
# A lookup that overruns keeps its thread until the system resolver gives up; the pool bounds how
# many such threads there can be (further lookups wait in the queue, within their own deadline).
_DNS_POOL_SIZE = 8
_dns_pool: ThreadPoolExecutor | None = None
_dns_pool_lock = threading.Lock()


def _dns_executor() -> ThreadPoolExecutor:
    global _dns_pool
    with _dns_pool_lock:
        if _dns_pool is None:
            _dns_pool = ThreadPoolExecutor(max_workers=_DNS_POOL_SIZE, thread_name_prefix="outbound-dns")
        return _dns_pool


def dns_timeout() -> float:
    """Seconds a host name lookup may take (``OUTBOUND_DNS_TIMEOUT``, 5 by default)."""
    return float(getattr(settings, "OUTBOUND_DNS_TIMEOUT", DEFAULT_DNS_TIMEOUT))


def _resolve(name: str, port: int, resolver: Resolver) -> tuple[Address, ...]:
    timeout = dns_timeout()
    lookup = _dns_executor().submit(lambda: list(resolver(name, port)))
    try:
        answers = lookup.result(timeout=timeout)
    except FutureTimeoutError:
        lookup.cancel()
        raise ValidationError(
            f"The host name {name} could not be resolved within {timeout:g} seconds."
        ) from None
    except (OSError, UnicodeError):
        raise ValidationError(f"The host name {name} could not be resolved.") from None
    addresses: list[Address] = []
    for answer in answers:
        try:
            address = ipaddress.ip_address(str(answer).split("%", 1)[0])
        except ValueError:
            raise ValidationError(f"{name} resolved to {answer!r}, which is not an address.") from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ValidationError(f"The host name {name} could not be resolved.")
    return tuple(addresses)


def internal_kind(address: Address) -> str | None:
    """What makes ``address`` internal ("a loopback address", ...), or None for a public one."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return internal_kind(embedded)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for kind, networks in _INTERNAL_RANGES:
        if any(address in network for network in networks):
            return kind
    if not address.is_global:
        return "a non-public (reserved or special-purpose) address"
    return None


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: mapped, 6to4, NAT64 or the old compatible form."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if int(address) > 1 and any(address in network for network in _EMBEDDING_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _check_address(address: Address, *, name: str | None, rules: _AllowList) -> bool:
    """Refuse an internal address unless allowed; True when an allow-list rule lifted a refusal."""
    kind = internal_kind(address)
    if kind is None:
        return False
    embedded = _embedded_ipv4(address)
    shown = f"{address} (that is {embedded})" if embedded is not None else str(address)
    via = f"{name} resolves to {shown}, which" if name else shown
    if kind == "a cloud metadata address":
        if rules.pins_exactly(embedded or address):
            return True
        raise ValidationError(f"{via} is {kind}; an administrator must allow-list exactly this address.")
    if (
        (name is not None and rules.names(name))
        or rules.covers(address)
        or (embedded is not None and rules.covers(embedded))
    ):
        return True
    raise ValidationError(f"{via} is {kind}; {_ALLOW_LIST_HINT}.")


_allow_list_sources: list[AllowListSource] = []


def register_allow_list_source(source: AllowListSource) -> None:
    """Let ``source(organization_id)`` name destinations an organisation has allow-listed (called
    from a higher floor's ``AppConfig.ready``; registering the same source twice adds it once)."""
    if source not in _allow_list_sources:
        _allow_list_sources.append(source)


def _operator_entries(setting: str) -> list[str]:
    entries = getattr(settings, setting, None) or []
    if isinstance(entries, str):
        entries = [part for part in entries.split(",") if part.strip()]
    return [str(entry) for entry in entries]


def _parsed_destinations(
    entries: Iterable[str], *, setting: str | None = None
) -> tuple[set[str], list[Network]]:
    """Host names and networks of allow-list entries; a bad operator entry stops the check loudly."""
    hosts: set[str] = set()
    networks: list[Network] = []
    for entry in entries:
        if setting is not None:
            try:
                entry = allow_rule_destination_clean(entry)
            except ValidationError as error:
                raise ImproperlyConfigured(f"{setting}: {' '.join(error.messages)}") from None
        network = parse_network(entry)
        if network is None:
            hosts.add(entry.strip().lower())
        else:
            networks.append(network)
    return hosts, networks


def _plain_http_hosts() -> tuple[set[str], list[Network]]:
    return _parsed_destinations(
        _operator_entries("OUTBOUND_ALLOW_PLAIN_HTTP"), setting="OUTBOUND_ALLOW_PLAIN_HTTP"
    )


def _plain_http_allowed(name: str | None, addresses: Sequence[Address]) -> bool:
    """Plain http only to a host the operator named, or whose every address is in a network they named."""
    hosts, networks = _plain_http_hosts()
    if name is not None and name in hosts:
        return True
    return bool(addresses) and all(
        any(address.version == network.version and address in network for network in networks)
        for address in addresses
    )


class _AllowList:
    """The operator's and the organisation's allow-list, read once and only when a refusal needs it."""

    def __init__(self, organization: Any):
        self._organization = organization
        self._hosts: set[str] | None = None
        self._networks: list[Network] = []

    def _load(self) -> None:
        if self._hosts is not None:
            return
        self._hosts, self._networks = _parsed_destinations(
            _operator_entries("OUTBOUND_ALLOW_LIST"), setting="OUTBOUND_ALLOW_LIST"
        )
        if self._organization is None:
            return
        organization_id = getattr(self._organization, "pk", self._organization)
        for source in _allow_list_sources:
            hosts, networks = _parsed_destinations(source(organization_id))
            self._hosts |= hosts
            self._networks += networks

    def names(self, host: str) -> bool:
        self._load()
        return host in self._hosts

    def covers(self, address: Address) -> bool:
        self._load()
        return any(address.version == network.version and address in network for network in self._networks)

    def pins_exactly(self, address: Address) -> bool:
        self._load()
        return any(network.num_addresses == 1 and address in network for network in self._networks)


def parse_network(text: str) -> Network | None:
    """``text`` as a network (``10.0.0.0/8``, or one address as /32 or /128), or None if it is not one."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError:
        return None


def allow_rule_destination_clean(text: str) -> str:
    """The normalised destination of an allow-list rule (a host name or a CIDR), or a ValidationError."""
    text = (text or "").strip()
    if not text:
        raise ValidationError("Enter a host name or a network in CIDR notation.")
    if "/" in text or ":" in text:
        try:
            return str(ipaddress.ip_network(text, strict=True))
        except ValueError as error:
            raise ValidationError(f"{text} is not a valid network: {error}.") from None
    host = _parse_host(text)
    return str(ipaddress.ip_network(host)) if not isinstance(host, str) else host


def url_shown(url: str) -> str:
    """A refused URL for messages and the ledger: no user info, no query, at most 200 characters."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        return f"{parts.scheme}://{host}{parts.path}"[:200]
    except ValueError:
        return "(malformed URL)"
