"""Conditional access: network lists (IPv4 and IPv6), the signed device header, the risk factors
and their outcomes at sign-in and on a network change, the control-panel form, and property tests
of the CIDR and header parsers."""

from __future__ import annotations

import ipaddress
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from accounts.conditional import (
    DEVICE_HEADER,
    STEP_UP_SESSION_KEY,
    cidr_list_clean,
    conditional_access_policy_save,
    device_claim_of,
    device_header_verify,
    device_signature,
)
from accounts.models import ConditionalAccessPolicy, DeviceCompliance, SessionEnd, User, UserSession
from accounts.sessions import session_ref_of
from audit.models import AuditEvent
from tests.conftest import PASSWORD, mfa_complete

OFFICE, HOME_NET, CAFE = "198.51.100.7", "203.0.113.9", "192.0.2.44"
PROXY = "10.9.9.9"
KEY = "device-proxy-test-key"
VIEWER = "viewer@acme.test"


@pytest.fixture(autouse=True)
def _deployment(settings):
    settings.TRUSTED_PROXIES = [f"{PROXY}/32"]
    settings.DEVICE_COMPLIANCE_KEY = KEY
    settings.DEVICE_COMPLIANCE_MAX_AGE_SECONDS = 300


def _policy(world, **values) -> ConditionalAccessPolicy:
    return conditional_access_policy_save(
        actor=world.users["platform_admin"], organization=world.org, **values
    )


def _sign_in(client, *, ip=OFFICE, country=None, headers=None, password=PASSWORD):
    extra = {"REMOTE_ADDR": ip}
    if country is not None:  # through the trusted proxy, which names the client and its country
        extra.update(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=ip, HTTP_X_CLIENT_COUNTRY=country)
    extra.update(headers or {})
    response = client.post(reverse("account_login"), {"login": VIEWER, "password": password}, **extra)
    if "_auth_user_id" in client.session:  # signed in: the person then passes MFA, as everyone must
        mfa_complete(client, User.objects.get(email=VIEWER))
    return response


def _decision() -> AuditEvent:
    return AuditEvent.objects.filter(action="access.conditional_decision").latest("id")


def _earlier_session(user, *, ip=OFFICE, country="", seen_ago=timedelta(days=2)) -> UserSession:
    seen = timezone.now() - seen_ago
    return UserSession.objects.create(user=user, session_ref=f"earlier-{ip}-{country}-{seen_ago}", ip=ip,
                                      country=country, created_at=seen, last_seen_at=seen,
                                      ended_at=seen)  # fmt: skip


def _header(device="laptop-42", compliant="1", issued=None, key=KEY) -> str:
    issued = str(int(time.time()) if issued is None else issued)
    return f"{device}.{compliant}.{issued}.{device_signature(key, device, compliant, issued)}"


# --- Parsers ------------------------------------------------------------------------------------


def test_cidr_lists_are_normalised_ipv4_and_ipv6():
    """GIVEN networks in several spellings WHEN cleaned THEN they are canonical CIDRs, host bits
    cleared, a bare address a /32 or /128, duplicates dropped."""
    text = "10.1.2.3/16\n2001:DB8::1/32, 192.0.2.9\n\n2001:db8::/32\n::ffff:0:0/96"
    assert cidr_list_clean(text) == ["10.1.0.0/16", "2001:db8::/32", "192.0.2.9/32", "::ffff:0:0/96"]


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "10.0.0", "2001:db8::/129", "example.com", "10.0.0.0/ 8",
                                 "010.0.0.1/32", "10.0.0.0/255.0.0.0", "1.2.3.4/-1"])  # fmt: skip
def test_malformed_networks_are_named_in_the_error(bad):
    """GIVEN a list with one malformed entry WHEN cleaned THEN the error names that entry."""
    with pytest.raises(ValidationError) as error:
        cidr_list_clean(f"10.0.0.0/8\n{bad}")
    assert bad in error.value.messages[0]


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), st.integers(min_value=0, max_value=128))
def test_property_any_network_round_trips(address, prefix):
    """Any address with any valid prefix cleans to the network Python computes, and cleaning again
    changes nothing."""
    prefix = min(prefix, address.max_prefixlen)
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    cleaned = cidr_list_clean(f"{address}/{prefix}")
    assert cleaned == [str(network)]
    assert cidr_list_clean(cleaned) == cleaned


@given(st.text(max_size=300))
def test_property_cidr_cleaning_never_crashes(text):
    """Any text either cleans to valid networks or raises a ValidationError — nothing else."""
    try:
        networks = cidr_list_clean(text)
    except ValidationError:
        return
    for network in networks:
        ipaddress.ip_network(network)


def test_a_signed_fresh_header_is_compliant_and_forged_or_stale_ones_are_not():
    """GIVEN headers signed by the proxy's key WHEN verified THEN fresh ones say what they sign;
    another key, an edited field, an old or future time are refused for what they are."""
    now = time.time()
    verify = lambda header: device_header_verify(header, key=KEY, now=now, max_age=300).state  # noqa: E731
    assert verify(_header()) == "compliant"
    assert verify(_header(compliant="0")) == "not_compliant"
    assert verify(_header(key="another key")) == "forged"
    assert verify(_header().replace("laptop-42.1", "laptop-42.0")) == "forged"
    assert verify(_header(issued=int(now) - 301)) == "stale"
    assert verify(_header(issued=int(now) + 3600)) == "future"
    assert verify(None) == "missing"
    assert verify("laptop.1.123") == "malformed"
    assert device_header_verify(_header(), key="", now=now, max_age=300).state == "forged"


@given(st.text(max_size=250))
def test_property_no_unsigned_header_is_compliant(text):
    """Any header text not signed by the key is never compliant, and never crashes the check."""
    assert not device_header_verify(text, key=KEY, now=time.time(), max_age=300).compliant


@given(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True), st.booleans(), st.integers(0, 42), st.data())
def test_property_any_edit_of_a_signed_header_is_refused(device, compliant, position, data):
    """A valid header verifies; changing any one character of its signature makes it forged or
    malformed."""
    header = _header(device=device, compliant="1" if compliant else "0")
    now = time.time()
    assert device_header_verify(header, key=KEY, now=now, max_age=300).state in ("compliant", "not_compliant")
    body, signature = header.rsplit(".", 1)
    replacement = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    )
    if signature[position] == replacement:
        return
    edited = f"{body}.{signature[:position]}{replacement}{signature[position + 1 :]}"
    assert device_header_verify(edited, key=KEY, now=now, max_age=300).state in ("forged", "malformed")


def test_the_idp_claim_counts_when_there_is_no_signed_header(db):
    """GIVEN no device header WHEN the SSO sign-in put the IdP's device claim in the session THEN
    that claim decides; a valid header wins over it."""
    request = RequestFactory().get("/")
    request.session = {"idp_device_compliant": True}
    assert device_claim_of(request).state == "compliant"
    request.session = {"idp_device_compliant": False}
    assert device_claim_of(request).state == "not_compliant"
    signed = RequestFactory().get("/", headers={DEVICE_HEADER: _header()})
    signed.session = {"idp_device_compliant": False}
    assert device_claim_of(signed).state == "compliant"


# --- Networks -----------------------------------------------------------------------------------


def test_a_denied_network_refuses_sign_in_without_saying_which_rule(world, client):
    """GIVEN a denied network WHEN the viewer signs in from it THEN no session is usable, the page
    says the organisation's policy refused (not which rule), and the ledger has the reason."""
    _policy(world, denied_networks="192.0.2.0/24")
    response = _sign_in(client, ip=CAFE)
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")
    assert "_auth_user_id" not in client.session
    page = client.get(response["Location"]).content.decode()
    assert "refused by your organisation" in page
    assert "192.0.2" not in page
    assert not UserSession.objects.filter(user=world.users["viewer"]).exists()
    decision = _decision()
    assert decision.outcome == "denied"
    assert decision.data["outcome"] == "deny"
    assert decision.data["reasons"] == ["network_denied"]
    assert decision.data["trigger"] == "sign_in"
    assert client.get(reverse("home")).status_code == 302  # still signed out


def test_an_allow_list_admits_only_its_networks_ipv6_too(world):
    """GIVEN an allow-list of an IPv6 and an IPv4 network WHEN the viewer signs in from inside and
    outside them THEN inside is allowed, outside refused."""
    _policy(world, allowed_networks=["2001:db8::/32", "198.51.100.0/24"])
    inside_v6, inside_v4, outside = Client(), Client(), Client()
    assert _sign_in(inside_v6, ip="2001:db8::5").status_code == 302
    assert "_auth_user_id" in inside_v6.session
    assert _decision().data["outcome"] == "allow"
    assert _sign_in(inside_v4, ip=OFFICE).status_code == 302
    assert "_auth_user_id" in inside_v4.session
    _sign_in(outside, ip="2001:db9::1")
    assert "_auth_user_id" not in outside.session
    assert _decision().data["reasons"] == ["network_not_allowed"]


def test_an_ipv4_mapped_address_is_matched_as_ipv4(world, client):
    """GIVEN a denied IPv4 network WHEN the address arrives IPv4-mapped in IPv6 THEN it is refused."""
    _policy(world, denied_networks=["192.0.2.0/24"])
    _sign_in(client, ip="::ffff:192.0.2.44")
    assert "_auth_user_id" not in client.session


# --- Device compliance --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "signed_in", "reason"),
    [
        (lambda: _header(), True, None),
        (lambda: _header(key="forged"), False, "device_forged"),
        (lambda: _header(issued=int(time.time()) - 3600), False, "device_stale"),
        (lambda: _header(compliant="0"), False, "device_not_compliant"),
        (lambda: None, False, "device_missing"),
    ],
)
def test_a_required_compliant_device(world, client, header, signed_in, reason):
    """GIVEN a policy that requires a compliant device WHEN the header is valid, forged, stale, says
    non-compliant or is missing THEN only the valid compliant one gets in."""
    _policy(world, device_compliance=DeviceCompliance.REQUIRE)
    value = header()
    _sign_in(client, headers={"HTTP_X_DEVICE_COMPLIANCE": value} if value else {})
    assert ("_auth_user_id" in client.session) is signed_in
    decision = _decision()
    assert decision.data["outcome"] == ("allow" if signed_in else "deny")
    if reason:
        assert reason in decision.data["reasons"]
    else:
        assert decision.data["device_id"] == "laptop-42"


def test_a_non_compliant_device_needs_a_second_factor_in_step_up_mode(world, client):
    """GIVEN device compliance in step-up mode WHEN a device without a header signs in THEN the
    session is usable but marked for the second factor."""
    _policy(world, device_compliance=DeviceCompliance.STEP_UP)
    _sign_in(client)
    assert "_auth_user_id" in client.session
    assert client.session[STEP_UP_SESSION_KEY] is True
    assert _decision().data == {**_decision().data, "outcome": "step_up", "reasons": ["device_missing"]}


# --- Risk ---------------------------------------------------------------------------------------


def test_a_new_network_alone_is_allowed_with_its_reason(world, client):
    """GIVEN earlier sessions from the office WHEN the viewer signs in from home THEN "new network"
    scores 20, under the step-up threshold: allowed, and the reason recorded."""
    _policy(world)
    _earlier_session(world.users["viewer"], ip=OFFICE)
    _sign_in(client, ip=HOME_NET)
    assert "_auth_user_id" in client.session
    assert STEP_UP_SESSION_KEY not in client.session
    assert (_decision().data["outcome"], _decision().data["score"]) == ("allow", 20)
    assert _decision().data["reasons"] == ["new_network"]


def test_the_same_network_is_not_new(world, client):
    """GIVEN an earlier session from the office network WHEN the viewer signs in from another
    address of the same /24 THEN nothing is new: score 0."""
    _policy(world)
    _earlier_session(world.users["viewer"], ip=OFFICE)
    _sign_in(client, ip="198.51.100.200")
    assert (_decision().data["score"], _decision().data["reasons"]) == (0, [])


def test_a_new_country_and_network_need_a_second_factor(world, client):
    """GIVEN earlier sessions from Germany long ago WHEN the viewer signs in from France through the
    trusted proxy THEN new network (20) + new country (30) = 50: step-up."""
    _policy(world)
    _earlier_session(world.users["viewer"], ip=OFFICE, country="DE", seen_ago=timedelta(days=3))
    _sign_in(client, ip=HOME_NET, country="FR")
    assert client.session[STEP_UP_SESSION_KEY] is True
    data = _decision().data
    assert (data["outcome"], data["score"], data["country"]) == ("step_up", 50, "FR")
    assert data["reasons"] == ["new_network", "new_country", "score_at_step_up_threshold"]
    assert UserSession.objects.get(session_ref=session_ref_of(client.session.session_key)).country == "FR"


def test_impossible_travel_is_refused(world, client):
    """GIVEN a session seen from Germany ten minutes ago WHEN the viewer signs in from France THEN
    impossible travel (60) on top of new network and country: refused."""
    _policy(world)
    _earlier_session(world.users["viewer"], ip=OFFICE, country="DE", seen_ago=timedelta(minutes=10))
    _sign_in(client, ip=HOME_NET, country="FR")
    assert "_auth_user_id" not in client.session
    data = _decision().data
    assert data["outcome"] == "deny"
    assert "impossible_travel" in data["reasons"]
    assert data["score"] == 110


def test_a_country_header_from_an_untrusted_peer_is_ignored(world, client):
    """GIVEN a client that sends the country header itself WHEN it signs in directly THEN the header
    is ignored: no country, no country factors."""
    _policy(world)
    _earlier_session(world.users["viewer"], ip=OFFICE, country="DE", seen_ago=timedelta(minutes=10))
    client.post(reverse("account_login"), {"login": VIEWER, "password": PASSWORD}, REMOTE_ADDR=OFFICE,
                HTTP_X_CLIENT_COUNTRY="FR", HTTP_X_FORWARDED_FOR=HOME_NET)  # fmt: skip
    data = _decision().data
    assert (data["country"], data["reasons"], data["outcome"]) == ("", [], "allow")
    assert UserSession.objects.get(session_ref=session_ref_of(client.session.session_key)).ip == OFFICE


def test_recent_failures_raise_the_score(world, client):
    """GIVEN two failed sign-ins WHEN the right password follows THEN the failures count (2 × 10)
    and, with the step-up threshold at 20, a second factor is required."""
    _policy(world, step_up_score=20)
    _sign_in(Client(), password="wrong one")
    _sign_in(Client(), password="wrong two")
    _sign_in(client)
    data = _decision().data
    assert (data["outcome"], data["score"]) == ("step_up", 20)
    assert data["reasons"][0] == "recent_failures:2"


def test_a_disabled_policy_decides_nothing(world, client):
    """GIVEN a policy switched off WHEN a denied network signs in THEN nothing is decided or recorded."""
    _policy(world, denied_networks=[CAFE], enabled=False)
    _sign_in(client, ip=CAFE)
    assert "_auth_user_id" in client.session
    assert not AuditEvent.objects.filter(action="access.conditional_decision").exists()


# --- A live session changes network -------------------------------------------------------------


def test_a_session_moving_to_a_denied_network_is_ended(world, client):
    """GIVEN a session signed in from the office WHEN it is used from a denied network THEN it ends
    (reason: access policy), the browser is signed out, and the decision names the trigger."""
    _policy(world, denied_networks=["192.0.2.0/24"])
    _sign_in(client, ip=OFFICE)
    row = UserSession.objects.get(session_ref=session_ref_of(client.session.session_key))
    assert client.get(reverse("home"), REMOTE_ADDR=OFFICE).status_code == 200
    response = client.get(reverse("home"), REMOTE_ADDR=CAFE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    row.refresh_from_db()
    assert row.end_reason == SessionEnd.CONDITIONAL
    assert _decision().data["trigger"] == "network_change"
    assert client.get(reverse("home"), REMOTE_ADDR=OFFICE).status_code == 302


def test_a_session_moving_to_a_new_network_may_need_a_second_factor(world, client):
    """GIVEN a low step-up threshold WHEN a session verified with the authenticator app moves to a
    network not seen before THEN its earlier verification no longer counts: it is sent to verify
    again, and goes on once it has; requests from the same address are not weighed again."""
    _policy(world, step_up_score=20)
    _sign_in(client, ip=OFFICE)
    assert STEP_UP_SESSION_KEY not in client.session
    assert client.get(reverse("home"), REMOTE_ADDR=OFFICE).status_code == 200
    response = client.get(reverse("home"), REMOTE_ADDR=HOME_NET)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account-mfa-verify"))
    assert client.session[STEP_UP_SESSION_KEY] is True
    decisions = AuditEvent.objects.filter(action="access.conditional_decision").count()
    mfa_complete(client, User.objects.get(email=VIEWER))  # the person types a fresh code
    assert client.get(reverse("home"), REMOTE_ADDR=HOME_NET).status_code == 200
    assert AuditEvent.objects.filter(action="access.conditional_decision").count() == decisions


def test_a_step_up_without_a_local_device_ends_the_session(world, client):
    """GIVEN a session that passed MFA by the IdP's claim (no device of its own) WHEN it moves to a
    network that asks for a step-up THEN it ends: enrolling a device now would let whoever holds
    the session choose the second factor."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    _policy(world, step_up_score=20)
    _sign_in(client, ip=OFFICE)
    TOTPDevice.objects.filter(user__email=VIEWER).delete()
    session = client.session
    session.pop(DEVICE_ID_SESSION_KEY)
    session["mfa_via_idp"] = {"provider": "acme-oidc", "claim": "mfa", "at": timezone.now().isoformat()}
    session.save()
    row = UserSession.objects.get(session_ref=session_ref_of(session.session_key))
    assert client.get(reverse("home"), REMOTE_ADDR=OFFICE).status_code == 200
    response = client.get(reverse("home"), REMOTE_ADDR=HOME_NET)
    assert response["Location"].startswith(reverse("account_login"))
    row.refresh_from_db()
    assert row.end_reason == SessionEnd.CONDITIONAL
    assert client.get(reverse("account-mfa-enrol"), REMOTE_ADDR=HOME_NET)["Location"].startswith(
        reverse("account_login")
    )


# --- Configuration ------------------------------------------------------------------------------


def test_the_control_panel_form_names_malformed_networks(world, client):
    """GIVEN the platform administrator WHEN they save a policy with a malformed network THEN the
    form shows a field error and nothing is saved; a valid one is saved and recorded."""
    client.force_login(world.users["platform_admin"])
    url = reverse("admin:accounts_conditionalaccesspolicy_add")
    form = {"enabled": "on", "allowed_networks": "", "denied_networks": "10.0.0.0/8\n300.1.1.1/32",
            "device_compliance": "off", "step_up_score": 30, "deny_score": 80, "new_network_weight": 20,
            "new_country_weight": 30, "recent_failure_weight": 10, "impossible_travel_weight": 60,
            "travel_window_minutes": 120}  # fmt: skip
    response = client.post(url, form)
    assert response.status_code == 200
    assert "300.1.1.1/32" in str(response.context["adminform"].form.errors["denied_networks"])
    assert not ConditionalAccessPolicy.objects.exists()

    response = client.post(url, {**form, "step_up_score": 90})
    assert "step_up_score" in response.context["adminform"].form.errors

    response = client.post(url, {**form, "denied_networks": "10.0.0.0/8\n2001:db8::/48"})
    assert response.status_code == 302
    policy = ConditionalAccessPolicy.objects.get(organization=world.org)
    assert policy.denied_networks == ["10.0.0.0/8", "2001:db8::/48"]
    event = AuditEvent.objects.get(action="conditional_access.policy_created")
    assert event.data["diff"]["denied_networks"]["after"] == ["10.0.0.0/8", "2001:db8::/48"]


def test_only_organisation_managers_save_a_policy(world):
    """GIVEN a compliance officer WHEN they call the service THEN it refuses and nothing is saved."""
    from governance.access.decision import AccessDenied

    with pytest.raises(AccessDenied):
        conditional_access_policy_save(actor=world.users["compliance_officer"], organization=world.org)
    assert not ConditionalAccessPolicy.objects.exists()
