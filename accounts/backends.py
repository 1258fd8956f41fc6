"""Authentication backends: the lockout check, then passwords; permissions only at the decision point."""

from __future__ import annotations

from allauth.account.auth_backends import AuthenticationBackend
from axes.backends import AxesStandaloneBackend
from django.core.exceptions import PermissionDenied


class PasswordOnlyBackend(AuthenticationBackend):
    """allauth's e-mail-and-password check, with every permission answer withheld.

    The parent (a ``ModelBackend``) would grant permissions from ``user_permissions`` and
    groups; here only ``governance.access.backends.DecisionPointBackend`` answers them.
    """

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
