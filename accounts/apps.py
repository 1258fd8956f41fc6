from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Imported here, not at module top: Django loads apps.py before the app registry is ready.
        from accounts import receivers, resources  # noqa: F401  (receivers: session records)
        from accounts.events import AccountEvent
        from accounts.sso import receivers as sso_receivers  # noqa: F401  (after an SSO sign-in)
        from audit.events import register_event_codes

        register_event_codes(AccountEvent)
        resources.register()
