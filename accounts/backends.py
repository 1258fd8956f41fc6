"""Authentication backends: the lockout check, then passwords; permissions only at the decision point."""

from __future__ import annotations

from allauth.account.auth_backends import AuthenticationBackend
from axes.backends import AxesStandaloneBackend
from django.core.exceptions import PermissionDenied

from accounts.lockout import REFUSED_LOCKED
from accounts.models import SignInPolicy, User


class PasswordOnlyBackend(AuthenticationBackend):
    """allauth's e-mail-and-password check, with every permission answer withheld.

    The parent (a ``ModelBackend``) would grant permissions from ``user_permissions`` and
    groups; here only ``governance.access.backends.DecisionPointBackend`` answers them.
    """

    def authenticate(self, request, **credentials):
        # An organisation that signs in through SSO only: refused before any password is checked,
        # with the same answer as a wrong password, so the refusal tells nobody whether the
        # password was right (nor that the account exists); the hashing work is done all the
        # same, and the question is one query whether or not the account exists.
        identifier = credentials.get("email") or credentials.get("username")
        if (
            identifier
            and SignInPolicy.objects.filter(
                local_password_disabled=True, organization__users__email__iexact=identifier
            ).exists()
        ):
            User().set_password(credentials.get("password") or "")
            if request is not None:  # the failure signal carries the reason to the ledger
                request.portal_login_refusal = "local_password_disabled"
            raise PermissionDenied("Password sign-in is off for this organisation.")
        return super().authenticate(request, **credentials)

    def get_user_permissions(self, user_obj, obj=None) -> set[str]:
        return set()

    def get_group_permissions(self, user_obj, obj=None) -> set[str]:
        return set()

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        return set()

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return False

    def has_module_perms(self, user_obj, app_label) -> bool:
        return False


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check (first in AUTHENTICATION_BACKENDS): a locked-out account or
    address is refused before any password is checked.

    Only requests can be locked out. A check without a request — a management command, a shell —
    is not an attempt from the network and passes on to the password backend (axes itself would
    raise instead).
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except PermissionDenied:
            setattr(request, REFUSED_LOCKED, True)
            raise
