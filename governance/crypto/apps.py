from django.apps import AppConfig


class CryptoConfig(AppConfig):
    name = "governance.crypto"
    label = "crypto"
    verbose_name = "Keys and encryption"

    def ready(self) -> None:
        # Imported here, not at module top: Django loads apps.py before the app registry is ready.
        from audit.events import register_event_codes
        from governance.core.resources import Resource, register
        from governance.crypto import checks  # noqa: F401  (registers the start-up checks)
        from governance.crypto.events import CryptoEvent
        from governance.crypto.models import DataKey, KeyEncryptionKey, RotationJob

        register_event_codes(CryptoEvent)
        # Platform keys belong to no workspace: the admin shows them to platform administrators.
        for model in (KeyEncryptionKey, DataKey):
            register(
                Resource(
                    model,
                    organization_field="workspace__organization",
                    workspace_field="workspace",
                    actions={"view": "key.view", "change": "key.manage"},
                )
            )
        register(
            Resource(
                RotationJob,
                organization_field="from_key__workspace__organization",
                workspace_field="from_key__workspace",
                actions={"view": "key.view"},
            )
        )
