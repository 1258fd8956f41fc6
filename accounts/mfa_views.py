"""The MFA pages: enrolment (forced at first sign-in), verification, one's own devices, and the
WebAuthn ceremonies (django-otp-webauthn's views, with our ledger and session handling)."""

from __future__ import annotations

from base64 import b32encode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn import exceptions as webauthn_errors
from django_otp_webauthn.models import WebAuthnCredential
from django_otp_webauthn.utils import rewrite_exceptions
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)

from accounts import mfa
from accounts.forms import CodeForm, EnrolTOTPForm
from audit.services import audited_transaction

_PENDING_TOTP = "mfa_pending_totp"
_FAILURE_MESSAGES = {
    mfa.Reason.BAD_CODE: "That code is not correct.",
    mfa.Reason.REPLAY: "That code has been used already. Wait for the next code of your app.",
    mfa.Reason.THROTTLED: "Too many wrong codes in a row. Wait a little, then try again.",
}


def _signed_out_after_replay(request: HttpRequest) -> HttpResponse:
    """A code that already opened a session, typed again: someone may have seen it. The
    half-signed-in session ends (recorded as a sign-out); a new sign-in needs a new code."""
    logout(request)
    messages.error(request, _FAILURE_MESSAGES[mfa.Reason.REPLAY] + " For your safety you were signed out.")
    return HttpResponseRedirect(reverse("account_login"))


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _pending_device(request: HttpRequest) -> TOTPDevice:
    pending = request.session.get(_PENDING_TOTP)
    device = (
        TOTPDevice.objects.filter(pk=pending, user=request.user, confirmed=False).first() if pending else None
    )
    if device is None:
        device = mfa.totp_device_start(actor=request.user)
        request.session[_PENDING_TOTP] = device.pk
    return device


def _show_backup_codes(request: HttpRequest, codes: list[str], next_url: str) -> HttpResponse:
    # The codes appear in this one response and nowhere else: never cached, never stored.
    response = render(request, "accounts/mfa_backup_codes.html", {"codes": codes, "next": next_url})
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest) -> HttpResponse:
    """Add an authenticator app (QR code) or a security key. Forced at first sign-in; a person
    who already has a device must verify this session before adding another."""
    enrolled = mfa.user_is_enrolled(request.user)
    if enrolled and not mfa.session_is_verified(request):
        return HttpResponseRedirect(f"{reverse('account-mfa-verify')}?{request.GET.urlencode()}")
    device = _pending_device(request)
    form = EnrolTOTPForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = mfa.totp_device_confirm(
            request=request, device=device, token=form.cleaned_data["code"], name=form.cleaned_data["name"]
        )
        if result.ok:
            request.session.pop(_PENDING_TOTP, None)
            messages.success(request, "Your authenticator app is set up.")
            if mfa.backup_codes_remaining(request.user) is None:
                codes = mfa.backup_codes_generate(actor=request.user)
                return _show_backup_codes(request, codes, _next_url(request))
            return HttpResponseRedirect(_next_url(request))
        if result.reason == mfa.Reason.REPLAY:
            return _signed_out_after_replay(request)
        form.add_error("code", _FAILURE_MESSAGES[result.reason])
    context = {
        "form": form,
        "qr_svg": mfa.totp_qr_svg(device),
        "secret": _base32(device),
        "first": not enrolled,
        "next": _next_url(request),  # only a local address reaches the page (and its script)
    }
    response = render(request, "accounts/mfa_enrol.html", context)
    response["Cache-Control"] = "no-store"
    return response


def _base32(device: TOTPDevice) -> str:
    raw = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """Type a code (authenticator app or backup code) or use a security key."""
    if not mfa.user_is_enrolled(request.user):
        return HttpResponseRedirect(f"{reverse('account-mfa-enrol')}?{request.GET.urlencode()}")
    if mfa.session_is_verified(request) and request.method == "GET":
        return HttpResponseRedirect(_next_url(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = mfa.mfa_verify(request=request, token=form.cleaned_data["code"])
        if result.ok:
            # The password alone said nothing: "signed in" is said once the second factor passes.
            messages.success(request, f"Signed in as {request.user.email}.")
            if result.method == "backup_codes":
                left = mfa.backup_codes_remaining(request.user) or 0
                messages.warning(
                    request, f"Backup code used: {left} left. Generate new ones when few are left."
                )
            return HttpResponseRedirect(_next_url(request))
        if result.reason == mfa.Reason.REPLAY:
            return _signed_out_after_replay(request)
        form.add_error("code", _FAILURE_MESSAGES[result.reason])
    context = {
        "form": form,
        "next": _next_url(request),  # only a local address reaches the page (and its script)
        "has_key": WebAuthnCredential.objects.filter(user=request.user, confirmed=True).exists(),
    }
    return render(request, "accounts/mfa_verify.html", context)


@login_required
@require_http_methods(["GET"])
def devices(request: HttpRequest) -> HttpResponse:
    """One's devices, each removable, and the backup codes left (needs a verified session)."""
    context = {
        "devices": [(mfa.device_kind(device), device) for device in mfa.second_factors_of(request.user)],
        "backup_left": mfa.backup_codes_remaining(request.user),
    }
    return render(request, "accounts/mfa_devices.html", context)


_REMOVABLE = {"totp": TOTPDevice, "webauthn": WebAuthnCredential}


@login_required
@require_POST
def device_remove(request: HttpRequest, kind: str, device_id: int) -> HttpResponse:
    model = _REMOVABLE.get(kind)
    device = model.objects.filter(pk=device_id, user=request.user).first() if model else None
    if device is None:
        raise Http404("No such device of yours.")
    mfa.mfa_device_remove(actor=request.user, device=device)
    messages.success(request, f"{device.name} is removed.")
    return HttpResponseRedirect(reverse("account-mfa"))


@never_cache
@login_required
@require_POST
def backup_codes(request: HttpRequest) -> HttpResponse:
    """Generate a new set of backup codes (the old set stops working), shown once."""
    codes = mfa.backup_codes_generate(actor=request.user)
    next_url = _next_url(request) if request.POST.get("next") else reverse("account-mfa")
    return _show_backup_codes(request, codes, next_url)


# --- WebAuthn ceremonies ------------------------------------------------------------------------
# The library's views, so that a key's registration and each use go through our services: the
# ledger event, the session-key rotation and the session record (its own views only mark the
# session). Registering needs a verified session unless the person has no device yet.


class KeyRegistrationBegin(BeginCredentialRegistrationView):
    pass


class KeyRegistrationComplete(CompleteCredentialRegistrationView):
    def post(self, *args, **kwargs):
        user, state, helper = self.get_user(), self.get_state(), self.get_helper()
        try:
            with audited_transaction(), rewrite_exceptions(logger=None):
                device = helper.register_complete(user=user, state=state, data=self.request.data)
                mfa.webauthn_enrolled(request=self.request, device=device)
        except webauthn_errors.OTPWebAuthnApiError as error:
            mfa.mfa_failure_record(request=self.request, method="webauthn", reason=mfa.Reason.BAD_ASSERTION)
            raise error
        return JsonResponse({"id": device.pk})


class KeyAuthenticationBegin(BeginCredentialAuthenticationView):
    pass


class KeyAuthenticationComplete(CompleteCredentialAuthenticationView):
    def complete_auth(self, device):
        # Second factor only: the person signed in already (passwordless sign-in is off).
        mfa.mfa_verified_by_device(request=self.request, device=device)
        messages.success(self.request, f"Signed in as {self.request.user.email}.")

    def post(self, *args, **kwargs):
        try:
            return super().post(*args, **kwargs)
        except webauthn_errors.OTPWebAuthnApiError:
            if self.request.user.is_authenticated:
                mfa.mfa_failure_record(
                    request=self.request, method="webauthn", reason=mfa.Reason.BAD_ASSERTION
                )
            raise
