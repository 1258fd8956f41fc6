from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit ledger"

    def ready(self) -> None:
        import audit.receivers  # noqa: F401 - connects the authentication signal handlers
        from audit import resources

        resources.register()
