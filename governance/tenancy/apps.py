from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "governance.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from audit.events import register_event_codes
        from governance.tenancy import evidence, resources
        from governance.tenancy.events import TenancyEvent

        register_event_codes(TenancyEvent)
        evidence.register()
        resources.register()
