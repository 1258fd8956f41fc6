from django.apps import AppConfig


class SiemConfig(AppConfig):
    """SIEM sinks: an app of its own on the domain floor (it reads the ledger, asks the decision
    point, keeps credentials in the secrets store and calls out through the network boundary)."""

    name = "audit.siem"
    label = "siem"
    verbose_name = "SIEM export"

    def ready(self) -> None:
        # Imported here, not at module top: Django loads apps.py before the app registry is ready.
        from audit.events import register_event_codes
        from audit.siem import resources
        from audit.siem.events import SiemEvent

        register_event_codes(SiemEvent)
        resources.register()
