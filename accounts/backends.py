"""Authentication backend: passwords here, permissions only at the decision point."""

from __future__ import annotations

from allauth.account.auth_backends import AuthenticationBackend


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
