"""Conditional access: network lists, device compliance and a risk score decide whether a
sign-in (or a live session whose network changed) is allowed, needs a second factor, or is refused.

``conditional_access_evaluate`` answers and records each decision (``access.conditional_decision``
with the outcome, the score and the reasons). The caller acts on it: ``accounts.receivers`` at
sign-in, ``SessionControlMiddleware`` when a session's address changes. A step-up sets
``request.session["mfa_step_up_required"] = True``; the MFA enforcement requires a local second
factor while that key is true.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone

from accounts.events import AccountEvent
from accounts.models import ConditionalAccessPolicy, DeviceCompliance, User, UserSession
from audit.models import Outcome
from audit.services import audit_event_record, audited_transaction, diff_fields
from governance.access.decision import require

MAX_NETWORKS = 200
STEP_UP_SESSION_KEY = "mfa_step_up_required"
IDP_DEVICE_CLAIM_SESSION_KEY = "idp_device_compliant"
DEVICE_HEADER = "X-Device-Compliance"
_FUTURE_SKEW_SECONDS = 60
_MAX_FAILURES_WEIGHED = 3
_HISTORY = 50  # earlier sessions compared with this one


class Outcomes:
    ALLOW = "allow"
    STEP_UP = "step_up"
    DENY = "deny"


# --- Parsers -----------------------------------------------------------------------------------


def cidr_parse(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """One network in CIDR notation (a bare address is a /32 or /128); host bits are cleared."""
    value = str(text).strip()
    if not value or len(value) > 64:
        raise ValueError("empty or too long")
    if "/" in value:
        prefix = value.partition("/")[2]
        if not prefix.isdigit() or len(prefix) > 3:
            raise ValueError("bad prefix length")
    return ipaddress.ip_network(value, strict=False)


def cidr_list_clean(value) -> list[str]:
    """Normalised CIDRs from text (one per line, or separated by commas) or a list; a clear error
    names every entry that is not a network."""
    if isinstance(value, str):
        entries = [part.strip() for line in value.splitlines() for part in line.split(",")]
    else:
        entries = [str(part).strip() for part in (value or [])]
    entries = [entry for entry in entries if entry]
    if len(entries) > MAX_NETWORKS:
        raise ValidationError(f"At most {MAX_NETWORKS} networks, please ({len(entries)} given).")
    networks, bad = [], []
    for entry in entries:
        try:
            network = str(cidr_parse(entry))
        except ValueError:
            bad.append(entry[:64])
            continue
        if network not in networks:
            networks.append(network)
    if bad:
        raise ValidationError(
            "Not a network in CIDR notation (such as 192.0.2.0/24 or 2001:db8::/32): " + ", ".join(bad)
        )
    return networks


def address_parse(address: str | None):
    """The address as an ``ipaddress`` object (IPv4-mapped IPv6 as IPv4), or None."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_in(address: str | None, networks: list[str]) -> bool:
    ip = address_parse(address)
    if ip is None:
        return False
    for text in networks:
        network = ipaddress.ip_network(text, strict=False)
        if network.version == ip.version and ip in network:
            return True
    return False


def network_of(address: str | None) -> str | None:
    """The network a client address belongs to for "new network": its /24 (IPv4) or /64 (IPv6)."""
    ip = address_parse(address)
    if ip is None:
        return None
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@dataclass(frozen=True)
class DeviceClaim:
    """What a device header (or an IdP claim) said: ``state`` is compliant, not_compliant, missing,
    malformed, forged, stale or future."""

    state: str
    device_id: str = ""

    @property
    def compliant(self) -> bool:
        return self.state == "compliant"


_DEVICE_HEADER = re.compile(r"^([A-Za-z0-9_-]{1,64})\.([01])\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$")


def device_signature(key: str, device_id: str, compliant: str, issued_at: str) -> str:
    """HMAC-SHA256 over ``<device id>.<0|1>.<unix time>``, base64url without padding."""
    mac = hmac.new(key.encode(), f"{device_id}.{compliant}.{issued_at}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def device_header_verify(header: str | None, *, key: str, now: float, max_age: int) -> DeviceClaim:
    """Check ``<device id>.<compliant>.<unix time>.<signature>`` from the device-management proxy:
    well-formed, signed under ``key`` (compared in constant time), and fresh."""
    if not header:
        return DeviceClaim("missing")
    match = _DEVICE_HEADER.match(header.strip()) if len(header) <= 200 else None
    if match is None or not key:
        return DeviceClaim("malformed" if match is None else "forged")
    device_id, compliant, issued_at, signature = match.groups()
    expected = device_signature(key, device_id, compliant, issued_at)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return DeviceClaim("forged", device_id)
    age = now - int(issued_at)
    if age > max_age:
        return DeviceClaim("stale", device_id)
    if age < -_FUTURE_SKEW_SECONDS:
        return DeviceClaim("future", device_id)
    return DeviceClaim("compliant" if compliant == "1" else "not_compliant", device_id)


def device_claim_of(request: HttpRequest) -> DeviceClaim:
    """The device's state from the signed header, or else from the IdP's claim in the session."""
    claim = device_header_verify(
        request.headers.get(DEVICE_HEADER),
        key=settings.DEVICE_COMPLIANCE_KEY or "",
        now=timezone.now().timestamp(),
        max_age=settings.DEVICE_COMPLIANCE_MAX_AGE_SECONDS,
    )
    if claim.state in ("compliant", "not_compliant"):
        return claim
    session = getattr(request, "session", None)
    idp_claim = session.get(IDP_DEVICE_CLAIM_SESSION_KEY) if session is not None else None
    if idp_claim is True:
        return DeviceClaim("compliant", "idp")
    if idp_claim is False:
        return DeviceClaim("not_compliant", "idp")
    return claim


# --- Evaluation --------------------------------------------------------------------------------


@dataclass
class ConditionalVerdict:
    """The answer for one sign-in or network change, with the score and every reason."""

    outcome: str
    score: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Signals:
    """What the request says about where it comes from."""

    address: str | None
    country: str | None
    device: DeviceClaim


def signals_of(request: HttpRequest) -> Signals:
    from governance.core.middleware import client_country, client_ip

    return Signals(
        address=client_ip(request), country=client_country(request), device=device_claim_of(request)
    )


def policy_for(user: User) -> ConditionalAccessPolicy | None:
    return ConditionalAccessPolicy.objects.filter(organization_id=user.organization_id, enabled=True).first()


def decision_compute(
    *, policy: ConditionalAccessPolicy, signals: Signals, history: list[UserSession], failures: int, now
) -> ConditionalVerdict:
    """The pure part: rules first (a refusal needs no score), then the risk factors."""
    reasons: list[str] = []
    if address_in(signals.address, policy.denied_networks):
        return ConditionalVerdict(Outcomes.DENY, 0, ["network_denied"])
    if policy.allowed_networks and not address_in(signals.address, policy.allowed_networks):
        return ConditionalVerdict(Outcomes.DENY, 0, ["network_not_allowed"])
    device_step_up = False
    if policy.device_compliance != DeviceCompliance.OFF and not signals.device.compliant:
        reasons.append(f"device_{signals.device.state}")
        if policy.device_compliance == DeviceCompliance.REQUIRE:
            return ConditionalVerdict(Outcomes.DENY, 0, reasons)
        device_step_up = True
    score = 0
    network = network_of(signals.address)
    if history and network is not None and network not in {network_of(row.ip) for row in history}:
        score += policy.new_network_weight
        reasons.append("new_network")
    countries = {row.country for row in history if row.country}
    if signals.country and countries and signals.country not in countries:
        score += policy.new_country_weight
        reasons.append("new_country")
    if failures:
        score += policy.recent_failure_weight * min(failures, _MAX_FAILURES_WEIGHED)
        reasons.append(f"recent_failures:{failures}")
    window = timedelta(minutes=policy.travel_window_minutes)
    recent = next((row for row in history if row.country), None)
    if (
        signals.country
        and recent is not None
        and recent.country != signals.country
        and now - recent.last_seen_at <= window
    ):
        score += policy.impossible_travel_weight
        reasons.append("impossible_travel")
    if score >= policy.deny_score:
        return ConditionalVerdict(Outcomes.DENY, score, [*reasons, "score_at_deny_threshold"])
    if score >= policy.step_up_score:
        return ConditionalVerdict(Outcomes.STEP_UP, score, [*reasons, "score_at_step_up_threshold"])
    if device_step_up:
        return ConditionalVerdict(Outcomes.STEP_UP, score, reasons)
    return ConditionalVerdict(Outcomes.ALLOW, score, reasons)


def conditional_access_evaluate(
    *, user: User, request: HttpRequest, trigger: str
) -> ConditionalVerdict | None:
    """Decide for ``user``'s request and record the decision; None when the organisation has no
    enabled policy (nothing is decided, nothing recorded)."""
    from accounts.lockout import account_failures

    policy = policy_for(user)
    if policy is None:
        return None
    signals = signals_of(request)
    earlier = UserSession.objects.filter(user=user).order_by("-last_seen_at")
    history = list(earlier.only("ip", "country", "last_seen_at")[:_HISTORY])
    decision = decision_compute(
        policy=policy,
        signals=signals,
        history=history,
        failures=account_failures(user=user),
        now=timezone.now(),
    )
    with audited_transaction():
        audit_event_record(
            action=AccountEvent.ACCESS_CONDITIONAL_DECISION,
            actor=user,
            target=user,
            organization_id=user.organization_id,
            outcome=Outcome.DENIED if decision.outcome == Outcomes.DENY else Outcome.SUCCESS,
            data={
                "outcome": decision.outcome,
                "score": decision.score,
                "reasons": decision.reasons,
                "trigger": trigger,
                "country": signals.country or "",
                "device": signals.device.state,
                "device_id": signals.device.device_id,
            },
        )
    return decision


# --- Configuration (control panel) -------------------------------------------------------------

POLICY_FIELDS = (
    "enabled",
    "allowed_networks",
    "denied_networks",
    "device_compliance",
    "step_up_score",
    "deny_score",
    "new_network_weight",
    "new_country_weight",
    "recent_failure_weight",
    "impossible_travel_weight",
    "travel_window_minutes",
)


def _settings_of(policy: ConditionalAccessPolicy) -> dict:
    return {name: getattr(policy, name) for name in POLICY_FIELDS}


def conditional_access_policy_save(*, actor, organization, **values) -> ConditionalAccessPolicy:
    """Create or change ``organization``'s conditional-access policy (``organization.manage``);
    the ledger event carries what changed."""
    unknown = set(values) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed here."))
    errors = {}
    for name in ("allowed_networks", "denied_networks"):
        if name in values:
            try:
                values[name] = cidr_list_clean(values[name])
            except ValidationError as error:
                errors[name] = error.messages
    if errors:
        raise ValidationError(errors)
    with audited_transaction():
        require(actor, "organization.manage", organization, fresh=True)
        policy = ConditionalAccessPolicy.objects.select_for_update().filter(
            organization=organization
        ).first() or ConditionalAccessPolicy(organization=organization)
        created = policy.pk is None
        before = {} if created else _settings_of(policy)
        for name, value in values.items():
            setattr(policy, name, value)
        if policy.step_up_score > policy.deny_score:
            raise ValidationError({"step_up_score": "The step-up score cannot be above the deny score."})
        policy.updated_at = timezone.now()
        policy.full_clean(exclude=["organization"])
        diff = diff_fields(before, _settings_of(policy))
        if created or diff:
            policy.save()
            audit_event_record(
                action=AccountEvent.CONDITIONAL_ACCESS_POLICY_CREATED
                if created
                else AccountEvent.CONDITIONAL_ACCESS_POLICY_UPDATED,
                actor=actor,
                target=policy,
                organization_id=organization.pk,
                data={"diff": diff},
            )
    return policy
