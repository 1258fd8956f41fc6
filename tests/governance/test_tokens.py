"""The kernel's prefixed tokens: one format for service-account and SCIM tokens."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from accounts.scim.tokens import ScimAuthenticationError
from governance.core.tokens import TokenFormat, TokenRefusedError, digest_matches, token_digest
from workflows.service_accounts.services import ServiceAccountAuthenticationError

FORMAT = TokenFormat("gpx_")


def test_a_minted_token_parses_back_and_only_its_digest_is_kept():
    minted = FORMAT.mint(prefix_taken=lambda prefix: False)
    parsed = FORMAT.parse(minted.plaintext)
    assert parsed.refusal == ""
    assert parsed.prefix == minted.prefix
    assert minted.plaintext.startswith(f"gpx_{minted.prefix}_")
    assert digest_matches(minted.digest, parsed.secret)
    assert minted.digest == token_digest(parsed.secret)
    assert parsed.secret not in repr(parsed)
    assert minted.plaintext not in repr(minted)


def test_a_taken_prefix_is_drawn_again():
    taken = []

    def prefix_taken(prefix: str) -> bool:
        taken.append(prefix)
        return len(taken) < 3

    minted = FORMAT.mint(prefix_taken=prefix_taken)
    assert len(taken) == 3
    assert minted.prefix == taken[-1]


def test_missing_malformed_and_foreign_tokens_are_refused_with_what_can_be_read():
    assert FORMAT.parse(None).refusal == "missing"
    assert FORMAT.parse("").refusal == "missing"
    truncated = FORMAT.parse("gpx_0123abcd_short")
    assert (truncated.refusal, truncated.prefix) == ("malformed", "0123abcd")
    assert FORMAT.parse("gpsa_0123abcd_" + "a" * 43).refusal == "malformed"


def test_an_unknown_row_never_matches_even_with_the_zero_digest():
    assert not digest_matches(None, "anything")
    assert not digest_matches(token_digest("a"), "b")


@given(st.text(max_size=200))
def test_any_text_parses_without_error(text):
    parsed = FORMAT.parse(text)
    assert parsed.refusal in ("", "malformed", "missing")


def test_a_refusal_tells_the_caller_nothing_of_its_reason():
    for error_class in (ScimAuthenticationError, ServiceAccountAuthenticationError):
        error = error_class("wrong secret")
        assert isinstance(error, TokenRefusedError)
        assert error.reason == "wrong secret"
        assert "wrong secret" not in str(error)
