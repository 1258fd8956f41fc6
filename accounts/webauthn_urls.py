"""WebAuthn ceremony endpoints under /accounts/mfa/webauthn/ (namespace ``otp_webauthn``, which
django-otp-webauthn's template tags reverse)."""

from django.urls import path
from django.views.i18n import JavaScriptCatalog

from accounts import mfa_views

app_name = "otp_webauthn"

urlpatterns = [
    path(
        "registration/begin/", mfa_views.KeyRegistrationBegin.as_view(), name="credential-registration-begin"
    ),
    path(
        "registration/complete/",
        mfa_views.KeyRegistrationComplete.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        mfa_views.KeyAuthenticationBegin.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        mfa_views.KeyAuthenticationComplete.as_view(),
        name="credential-authentication-complete",
    ),
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="js-i18n-catalog",
    ),
]
