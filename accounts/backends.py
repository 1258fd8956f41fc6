"""Authentication backends: the lockout check, then passwords; permissions only at the decision point."""

from __future__ import annotations

from allauth.account.auth_backends import AuthenticationBackend
from axes.backends import AxesStandaloneBackend
from django.contrib import messages
from django.core.exceptions import PermissionDenied

SSO_ONLY_MESSAGE = "Your organisation signs in through single sign-on only: use its sign-in button below."


class PasswordOnlyBackend(AuthenticationBackend):
    """allauth's e-mail-and-password check, with every permission answer withheld.

    The parent (a ``ModelBackend``) would grant permissions from ``user_permissions`` and
    groups; here only ``governance.access.backends.DecisionPointBackend`` answers them.
    """

    def authenticate(self, request, **credentials):
        user = super().authenticate(request, **credentials)
        if user is not None:
            from accounts.sso.services import local_password_disabled

            if local_password_disabled(user.organization_id):
                # PermissionDenied stops every other backend; the failure signal carries the
                # reason to the ledger (audit.receivers), the message tells the person what to do.
                if request is not None:
                    request.portal_login_refusal = "local_password_disabled"
                    if hasattr(request, "_messages"):
                        messages.error(request, SSO_ONLY_MESSAGE)
                raise PermissionDenied(SSO_ONLY_MESSAGE)
        return user

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
            from accounts.lockout import REFUSED_LOCKED

            setattr(request, REFUSED_LOCKED, True)
            raise
