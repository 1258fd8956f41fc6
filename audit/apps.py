from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit ledger"

    def ready(self) -> None:
        # Imported here, not at module top: Django loads apps.py before the app registry is ready.
        from audit import resources
        from audit.events import EvidenceEvent, LedgerEvent, RetentionEvent, register_event_codes

        register_event_codes(LedgerEvent, EvidenceEvent, RetentionEvent)
        resources.register()
