"""django-allauth adapter: accounts are created by administrators (and later by SSO), not by signup."""

from allauth.account.adapter import DefaultAccountAdapter


class ClosedSignupAccountAdapter(DefaultAccountAdapter):
    """Refuse self-service signup."""

    def is_open_for_signup(self, request) -> bool:
        return False
