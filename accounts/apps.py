from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import receivers, resources  # noqa: F401  (receivers: session records)
        from accounts.sso import receivers as sso_receivers  # noqa: F401  (after an SSO sign-in)

        resources.register()
