"""Multi-factor authentication: TOTP apps, single-use backup codes and WebAuthn keys.

A signed-in session counts as verified once one of the person's confirmed devices accepted a
code (or a WebAuthn assertion) in it: django-otp then keeps the device in the session,
``UserSession.mfa_verified_at`` records when, and the session key is rotated. Until then
``MFAEnforcementMiddleware`` lets the session reach only the sign-in/out and MFA pages.

Ledger events: ``mfa.enrolled``, ``mfa.verified``, ``mfa.failed`` (reason ``bad_code``,
``replay``, ``throttled``, ``bad_assertion``), ``mfa.backup_codes_generated``,
``mfa.backup_code_used``, ``mfa.device_removed`` and ``mfa.reset``. No event, log line or page
other than the enrolment page carries a secret: not the TOTP key, not its otpauth URI, not a code.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.events import AccountEvent
from accounts.models import BackupCode, BackupCodeDevice, User, UserSession, backup_code_digest
from accounts.sessions import session_ref_of
from audit.models import Outcome
from audit.services import audit_event_record, audited_transaction, rows_where
from governance.access.decision import require

_TOTP_TOKEN = re.compile(r"^\d{6}$")
# Backup codes: 10 characters from 32 unambiguous ones (50 bits), shown as XXXXX-XXXXX.
_BACKUP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class Reason:
    BAD_CODE = "bad_code"
    REPLAY = "replay"
    THROTTLED = "throttled"
    BAD_ASSERTION = "bad_assertion"


@dataclass(frozen=True)
class Verification:
    """The outcome of one verification attempt; ``reason`` says why it failed."""

    ok: bool
    reason: str | None = None
    method: str | None = None


def device_kind(device: Device) -> str:
    if isinstance(device, TOTPDevice):
        return "totp"
    if isinstance(device, WebAuthnCredential):
        return "webauthn"
    return "backup_codes"


def _event(
    action: str, *, actor, user: User, outcome: str = Outcome.SUCCESS, covers: tuple = (), **data
) -> None:
    audit_event_record(
        action=action,
        actor=actor,
        target=user,
        organization_id=user.organization_id,
        outcome=outcome,
        data=data,
        covers=covers,
    )


def _codes_of(user: User) -> list[str]:
    """``covers`` entries for the single-use codes of ``user``'s backup-code and static devices
    (rows that belong to a device, not to the person the event names)."""
    return [
        *(
            rows_where(BackupCode, "device", pk)
            for pk in BackupCodeDevice.objects.filter(user=user).values_list("pk", flat=True)
        ),
        *(
            rows_where(StaticToken, "device", pk)
            for pk in StaticDevice.objects.filter(user=user).values_list("pk", flat=True)
        ),
    ]


def _session_of(request: HttpRequest) -> str | None:
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    return session_ref_of(key) if key else None


# --- Reads --------------------------------------------------------------------------------------


def second_factors_of(user: User) -> list[Device]:
    """The person's confirmed second factors (TOTP apps and WebAuthn keys; backup codes aside)."""
    return [
        *TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id"),
        *WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("id"),
    ]


def user_is_enrolled(user: User) -> bool:
    """Whether the person has a confirmed TOTP app or WebAuthn key (backup codes alone are not)."""
    return (
        TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        or WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()
    )


def mfa_step_up_demand(request: HttpRequest) -> bool:
    """Conditional access asked a live session for a step-up: whatever verified it before (a
    device in this session, the IdP's claim) no longer counts; only a local device verified from
    now on does. False when the person has no local device to step up with — the caller then
    ends the session, since enrolling a device now would let whoever holds the session choose it.
    """
    session = request.session
    session["mfa_step_up_required"] = True
    session.pop(DEVICE_ID_SESSION_KEY, None)
    session.pop("mfa_via_idp", None)
    request.user.otp_device = None  # what django-otp's is_verified() reads for this request
    return user_is_enrolled(request.user)


def backup_codes_remaining(user: User) -> int | None:
    """How many unused backup codes the person has; None when they never generated any."""
    device = BackupCodeDevice.objects.filter(user=user).first()
    return device.remaining if device else None


def session_is_verified(request: HttpRequest) -> bool:
    """Whether this signed-in session has passed MFA.

    A local device verified in this session counts. So does the IdP's MFA claim that the SSO
    sign-in accepted under the administrator's choice (``session["mfa_via_idp"]``, a dict
    naming provider, claim and time) — unless conditional access asked for a local step-up
    (``session["mfa_step_up_required"]``), when only a local device counts.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if getattr(user, "is_verified", None) is not None and user.is_verified():
        return True
    session = request.session
    if session.get("mfa_step_up_required"):
        return False
    claim = session.get("mfa_via_idp")
    return isinstance(claim, dict) and all(claim.get(key) for key in ("provider", "claim", "at"))


# --- Enrolment ----------------------------------------------------------------------------------


def totp_device_start(*, actor: User) -> TOTPDevice:
    """A fresh, unconfirmed TOTP device for the actor to scan; it counts for nothing until
    ``totp_device_confirm`` accepts a code from it. An earlier unconfirmed one is replaced."""
    with audited_transaction():
        TOTPDevice.objects.filter(user=actor, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=actor, name="Authenticator app", confirmed=False)
        _event(AccountEvent.MFA_ENROLMENT_STARTED, actor=actor, user=actor, method="totp")
    return device


def totp_qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth URI as an inline SVG QR code (no image file, no log line)."""
    # Imported here: only enrolment draws a QR code, and the library is slow to import.
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def totp_device_confirm(
    *, request: HttpRequest, device: TOTPDevice, token: str, name: str = ""
) -> Verification:
    """Confirm a new TOTP device with a code from it; the session is then verified by it."""
    user = request.user
    if device.user_id != user.pk or device.confirmed:
        raise ValueError("Only one's own unconfirmed device is confirmed here.")
    result = _check_totp(device, token)
    if not result.ok:
        _failure(user=user, request=request, method="totp", reason=result.reason, enrolment=True)
        return result
    with audited_transaction():
        device.confirmed = True
        device.name = (name or device.name)[:64]
        device.save(update_fields=["confirmed", "name"])
        _event(AccountEvent.MFA_ENROLLED, actor=user, user=user, method="totp", device=device.persistent_id)
        _session_verified(request, device, method="totp")
    return result


def webauthn_enrolled(*, request: HttpRequest, device: WebAuthnCredential) -> None:
    """Record a newly registered WebAuthn key; a session not yet verified is verified by it
    (registering a key needs a verified session unless it is the person's first factor)."""
    user = request.user
    with audited_transaction():
        _event(
            AccountEvent.MFA_ENROLLED, actor=user, user=user, method="webauthn", device=device.persistent_id
        )
        if request.session.get(DEVICE_ID_SESSION_KEY) is None:
            _session_verified(request, device, method="webauthn")


def backup_codes_generate(*, actor: User) -> list[str]:
    """A new set of single-use backup codes, replacing any earlier set. The codes are returned
    once, to be shown once; only their keyed digests are kept."""
    codes = []
    for _ in range(settings.MFA_BACKUP_CODE_COUNT):
        raw = "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    with audited_transaction():
        device, _ = BackupCodeDevice.objects.select_for_update().get_or_create(
            user=actor, defaults={"name": "Backup codes"}
        )
        device.codes.all().delete()
        device.throttle_reset(commit=True)
        BackupCode.objects.bulk_create(
            BackupCode(device=device, digest=backup_code_digest(user_id=actor.pk, code=code))
            for code in codes
        )
        _event(
            AccountEvent.MFA_BACKUP_CODES_GENERATED,
            actor=actor,
            user=actor,
            count=len(codes),
            covers=(rows_where(BackupCode, "device", device.pk),),
        )
    return codes


# --- Verification -------------------------------------------------------------------------------


def _replayed(device: TOTPDevice, token: int, now: float) -> bool:
    """Whether ``token`` is the device's code for a time step already used (``last_t``)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = now
    for offset in range(-device.tolerance, device.tolerance + 1):
        totp.drift = device.drift + offset
        if totp.t() <= device.last_t and totp.token() == token:
            return True
    return False


def _check_totp(device: TOTPDevice, token: str) -> Verification:
    """One TOTP attempt with the device row locked: two requests with one code cannot both pass."""
    token = "".join(str(token).split())
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            return Verification(False, Reason.THROTTLED, "totp")
        now = time.time()
        if _TOTP_TOKEN.match(token) and _replayed(device, int(token), now):
            device.throttle_increment(commit=True)
            return Verification(False, Reason.REPLAY, "totp")
        if device.verify_token(token):
            return Verification(True, None, "totp")
    return Verification(False, Reason.BAD_CODE, "totp")


def mfa_verify(*, request: HttpRequest, token: str) -> Verification:
    """Check a code typed by the signed-in person: six digits go to their TOTP apps, anything
    else to their backup codes. Success verifies the session; every failure is recorded."""
    user = request.user
    token = "".join(str(token).split())
    if _TOTP_TOKEN.match(token):
        method = "totp"
        devices = list(TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id"))
    else:
        method = "backup_codes"
        devices = list(BackupCodeDevice.objects.filter(user=user, confirmed=True))
    reasons = []
    for device in devices:
        result = _check_totp(device, token) if method == "totp" else _check_backup(device, token, user=user)
        if result.ok:
            with audited_transaction():
                _session_verified(request, device, method=method)
            return result
        reasons.append(result.reason)
    # The most telling reason: a replayed code says more than a throttled or a wrong one.
    reason = next((r for r in (Reason.REPLAY, Reason.THROTTLED) if r in reasons), Reason.BAD_CODE)
    _failure(user=user, request=request, method=method, reason=reason)
    return Verification(False, reason, method)


def _check_backup(device: BackupCodeDevice, token: str, *, user: User) -> Verification:
    """One backup-code attempt with the device row locked; a code that works is spent, and
    recorded, in the same transaction."""
    with audited_transaction():
        device = BackupCodeDevice.objects.select_for_update().get(pk=device.pk)
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            return Verification(False, Reason.THROTTLED, "backup_codes")
        if device.verify_token(token):
            _event(
                AccountEvent.MFA_BACKUP_CODE_USED,
                actor=user,
                user=user,
                remaining=device.remaining,
                covers=(rows_where(BackupCode, "device", device.pk),),
            )
            return Verification(True, None, "backup_codes")
    return Verification(False, Reason.BAD_CODE, "backup_codes")


def mfa_verified_by_device(*, request: HttpRequest, device: Device) -> None:
    """A device verified outside the code form (a WebAuthn assertion): verify the session."""
    with audited_transaction():
        _session_verified(request, device, method=device_kind(device))


def mfa_failure_record(*, request: HttpRequest, method: str, reason: str) -> None:
    """Record a failed attempt that did not go through ``mfa_verify`` (a WebAuthn assertion)."""
    _failure(user=request.user, request=request, method=method, reason=reason)


def _failure(*, user: User, request: HttpRequest, method: str, reason: str, enrolment: bool = False) -> None:
    data = {"method": method, "reason": reason, "session": (_session_of(request) or "")[:16]}
    if enrolment:
        data["enrolment"] = True
    with audited_transaction():
        _event(AccountEvent.MFA_FAILED, actor=user, user=user, outcome=Outcome.FAILED, **data)


def _session_verified(request: HttpRequest, device: Device, *, method: str) -> None:
    """Mark the session verified by ``device``: django-otp keeps the device in the session, the
    key is rotated (a key seen before verification is worth nothing after it), and the session's
    record follows the new key and notes the time. Runs inside the caller's audited transaction."""
    user = request.user
    old_ref = _session_of(request)
    otp_login(request, device)
    request.session.cycle_key()
    new_ref = _session_of(request)
    if old_ref is not None and new_ref is not None:
        UserSession.objects.filter(session_ref=old_ref).update(
            session_ref=new_ref, mfa_verified_at=timezone.now()
        )
    _event(
        AccountEvent.MFA_VERIFIED,
        actor=user,
        user=user,
        method=method,
        device=device.persistent_id,
        session=(new_ref or "")[:16],
    )


# --- Removal ------------------------------------------------------------------------------------


# The single-use codes that belong to a device (and go with it).
_CODE_MODELS = {BackupCodeDevice: (BackupCode,), StaticDevice: (StaticToken,)}


def _device_models() -> tuple[type[Device], ...]:
    return (TOTPDevice, WebAuthnCredential, BackupCodeDevice, StaticDevice)


def mfa_device_remove(*, actor: User, device: Device) -> None:
    """Remove one device: its owner may; anyone else needs ``user.manage`` over the owner."""
    with audited_transaction():
        device = type(device).objects.select_for_update().select_related("user").get(pk=device.pk)
        owner = device.user
        if actor.pk != owner.pk:
            require(actor, "user.manage", owner, fresh=True)
        kind, persistent_id, name = device_kind(device), device.persistent_id, device.name
        codes = [rows_where(model, "device", device.pk) for model in _CODE_MODELS.get(type(device), ())]
        device.delete()
        _event(
            AccountEvent.MFA_DEVICE_REMOVED,
            actor=actor,
            user=owner,
            method=kind,
            device=persistent_id,
            name=name[:64],
            covers=tuple(codes),
        )


def mfa_reset(*, actor: User, user: User) -> int:
    """Administrator's reset (lost phone): every device of ``user`` goes, their sessions lose
    their verification, and their next request leads to enrolment. Needs ``user.manage``."""
    with audited_transaction():
        user = User.objects.select_for_update().get(pk=user.pk)
        require(actor, "user.manage", user, fresh=True)
        codes = _codes_of(user)
        removed = 0
        for model in _device_models():
            _, per_model = model.objects.filter(user=user).delete()
            removed += per_model.get(model._meta.label, 0)
        UserSession.objects.filter(user=user, ended_at__isnull=True).update(mfa_verified_at=None)
        _event(AccountEvent.MFA_RESET, actor=actor, user=user, removed=removed, covers=tuple(codes))
    return removed
