"""Failed SCIM token attempts are throttled per token prefix and per client address (IPv6 per
/64): past the limit a locked address gets 429 with Retry-After before any look-up; a locked
prefix refuses only wrong secrets (429), so whoever knows a prefix cannot lock its holder out.
Each lockout is recorded once as ``scim.locked_out`` — not each refused attempt."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.scim.principal import SCIM_TOKENS
from audit.models import AuditEvent
from tests.accounts.scim_world import scim_error, scim_token_for

pytestmark = pytest.mark.django_db

LIMIT = 3


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.TOKEN_THROTTLE_FAILURES = LIMIT
    settings.TOKEN_THROTTLE_WINDOW_SECONDS = 300
    settings.TOKEN_THROTTLE_LOCKOUT_SECONDS = 600


def _call(token: str, address: str):
    return Client().get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=address)


def _wrong_secret(token: str) -> str:
    prefix = SCIM_TOKENS.parse(token).prefix
    return f"gpscim_{prefix}_{'A' * 43}"


def test_failures_with_one_prefix_lock_out_wrong_secrets_but_not_the_holder(world):
    """GIVEN Acme's token WHEN its prefix is tried with a wrong secret LIMIT times from different
    addresses THEN further wrong secrets get 429 with Retry-After from any address, while the
    correct token still gets 200; one lockout event names the prefix, and attempts refused
    during the lockout add no event."""
    token = scim_token_for(world)
    for number in range(LIMIT):
        assert _call(_wrong_secret(token), f"198.51.100.{number + 1}").status_code == 401
    assert _call(token, "203.0.113.9").status_code == 200
    refused = _call(_wrong_secret(token), "203.0.113.10")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 600
    assert scim_error(refused)["status"] == "429"
    for number in range(2):
        assert _call(_wrong_secret(token), f"198.51.100.{number + 20}").status_code == 429
    assert _call(token, "198.51.100.1").status_code == 200
    locked = AuditEvent.objects.get(action="scim.locked_out")
    assert locked.data["locked"] == "prefix"
    assert locked.data["prefix"] == SCIM_TOKENS.parse(token).prefix
    assert locked.data["failures"] == LIMIT
    assert locked.organization_id == world.org.pk
    assert AuditEvent.objects.filter(action="scim.auth_failed").count() == LIMIT


def test_ipv6_addresses_count_per_64(world):
    """GIVEN LIMIT bad tokens from different addresses of one IPv6 /64 WHEN the valid token is sent
    from another address of that /64 THEN 429; from another /64 THEN 200."""
    token = scim_token_for(world)
    for number in range(LIMIT):
        assert (
            _call(f"gpscim_0000000{number}_" + "B" * 43, f"2001:db8:1:2::{number + 1:x}").status_code == 401
        )
    assert _call(token, "2001:db8:1:2:ffff:ffff:ffff:fffe").status_code == 429
    assert _call(token, "2001:db8:1:3::1").status_code == 200
    locked = AuditEvent.objects.get(action="scim.locked_out")
    assert locked.data["locked"] == "address"


def test_failures_from_one_address_lock_that_address_out_only(world):
    """GIVEN LIMIT bad tokens (unknown prefixes, missing header) from one address WHEN the valid
    token is then sent from it THEN 429; from another address THEN 200. One lockout event."""
    token = scim_token_for(world)
    address = "192.0.2.77"
    assert _call("gpscim_00000001_" + "B" * 43, address).status_code == 401
    assert _call("not-even-a-token", address).status_code == 401
    assert Client().get("/scim/v2/Users", REMOTE_ADDR=address).status_code == 401
    assert _call(token, address).status_code == 429
    assert _call(token, "192.0.2.78").status_code == 200
    locked = AuditEvent.objects.get(action="scim.locked_out")
    assert (locked.data["locked"], locked.data["address"]) == ("address", address)


def test_below_the_limit_the_valid_token_works(world):
    token = scim_token_for(world)
    for _ in range(LIMIT - 1):
        _call(_wrong_secret(token), "198.51.100.5")
    assert _call(token, "198.51.100.5").status_code == 200
    assert not AuditEvent.objects.filter(action="scim.locked_out").exists()
