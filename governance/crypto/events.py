"""The event codes this app writes to the ledger (registered in its ``AppConfig.ready``)."""

from audit.events import Category, EventCode


class CryptoEvent(EventCode):
    """Keys and encryption."""

    # Keys and encryption.
    KEY_CREATED = "key.created", Category.SYSTEM
    KEY_ROTATED = "key.rotated", Category.SYSTEM
    KEY_BYOK_CONFIGURED = "key.byok_configured", Category.ADMIN
    DATA_KEY_CREATED = "data_key.created", Category.SYSTEM
    DATA_KEY_ROTATION_STARTED = "data_key.rotation_started", Category.SYSTEM
    DATA_KEY_ROTATION_COMPLETED = "data_key.rotation_completed", Category.SYSTEM
    DATA_KEY_DESTROYED = "data_key.destroyed", Category.SYSTEM
    CRYPTO_DECRYPT_FAILED = "crypto.decrypt_failed", Category.SYSTEM
