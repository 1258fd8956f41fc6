"""What a client address counts as in the token throttles: IPv6 per /64, IPv4 one by one."""

from __future__ import annotations

import pytest

from governance.core.throttle import address_key


@pytest.mark.parametrize(
    ("address", "counted"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("not an address", "not an address"),
    ],
)
def test_addresses_count_per_host_for_ipv4_and_per_64_for_ipv6(address, counted):
    """GIVEN a client address WHEN the throttle counts it THEN IPv4 (also IPv4-mapped) counts as
    itself, IPv6 as its /64, and anything unparsable as the text it is."""
    assert address_key(address) == counted
