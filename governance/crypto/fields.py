"""``EncryptedTextField``: a model field whose column holds only ciphertext.

The value is encrypted when the row is saved, under the active data key of the row's workspace
and the field's purpose, and bound to the table, column and primary key — which must therefore
be known before the insert (use a UUID primary key). It is decrypted lazily, on first access to
the attribute, so listing rows never decrypts anything. Querying by the plaintext is refused;
serialisation (``dumpdata``) gives the ciphertext, never the value.
"""

from __future__ import annotations

import base64
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction

from audit.models import Outcome
from audit.services import audit_event_record
from governance.core.redaction import secret_register
from governance.crypto import envelope
from governance.crypto.errors import DecryptionError
from governance.crypto.events import CryptoEvent
from governance.crypto.keyring import active_key, aead_for


class Sealed(bytes):
    """A ciphertext as read from the database."""


class _Plain(str):
    """A value assigned in this process and not saved yet."""


def _cache_name(attname: str) -> str:
    return f"_{attname}_plaintext"


class _EncryptedAttribute:
    """Holds the ciphertext in the instance and hands out the decrypted value on access."""

    def __init__(self, field: EncryptedTextField) -> None:
        self.field = field

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__.get(self.field.attname)
        if value is None or isinstance(value, _Plain):
            return value if value is None else str(value)
        cache = _cache_name(self.field.attname)
        if cache not in instance.__dict__:
            instance.__dict__[cache] = self.field.decrypt(instance, value)
        return instance.__dict__[cache]

    def __set__(self, instance, value) -> None:
        instance.__dict__.pop(_cache_name(self.field.attname), None)
        if value is None or isinstance(value, Sealed):
            instance.__dict__[self.field.attname] = value
        elif isinstance(value, str):
            instance.__dict__[self.field.attname] = _Plain(value)
        else:
            raise TypeError(f"{self.field.name} takes text; got {type(value).__name__}.")


class EncryptedTextField(models.BinaryField):
    """Text stored as an AES-256-GCM ciphertext (see governance.crypto.envelope).

    ``purpose`` chooses the data key family (``general`` or ``credentials``); ``workspace_field``
    names the attribute holding the row's workspace id (None: the platform's key).
    """

    def __init__(
        self, *args, purpose: str = "general", workspace_field: str | None = "workspace_id", **kwargs
    ):
        self.purpose = purpose
        self.workspace_field = workspace_field
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["purpose"] = self.purpose
        kwargs["workspace_field"] = self.workspace_field
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def contribute_to_class(self, cls, name, private_only=False):
        super().contribute_to_class(cls, name, private_only)
        setattr(cls, self.attname, _EncryptedAttribute(self))

    # --- database round trip --------------------------------------------------------------------

    def from_db_value(self, value, expression, connection):
        return None if value is None else Sealed(bytes(value))

    def pre_save(self, model_instance, add):
        value = model_instance.__dict__.get(self.attname)
        if isinstance(value, _Plain):
            sealed = self.encrypt(model_instance, str(value))
            model_instance.__dict__[self.attname] = sealed
            model_instance.__dict__[_cache_name(self.attname)] = str(value)
            return sealed
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        if isinstance(value, _Plain):
            raise TypeError(f"{self.name} is encrypted: it cannot be compared with or filtered by plaintext.")
        return super().get_db_prep_value(value, connection, prepared)

    def value_to_string(self, obj):
        value = obj.__dict__.get(self.attname)
        if isinstance(value, _Plain):
            raise TypeError(f"Save the row before serialising its encrypted field {self.name}.")
        return "" if value is None else base64.b64encode(value).decode()

    # --- encryption -----------------------------------------------------------------------------

    def context(self, instance) -> bytes:
        if instance.pk is None:
            raise ImproperlyConfigured(
                f"{type(instance).__name__}.{self.name} is encrypted and bound to its row: the primary key "
                "must be set before saving (use a UUID primary key with a default)."
            )
        return envelope.context_of(instance._meta.db_table, self.column, instance.pk)

    def workspace_id_of(self, instance) -> int | None:
        return getattr(instance, self.workspace_field) if self.workspace_field else None

    def encrypt(self, instance, plaintext: str) -> Sealed:
        key = active_key(self.workspace_id_of(instance), self.purpose)
        return Sealed(envelope.seal(key.aead, key.key_id, plaintext.encode(), self.context(instance)))

    def decrypt(self, instance, blob: bytes) -> str:
        try:
            header = envelope.header_of(blob)
            aead = aead_for(header.key_id, owner=(self.workspace_id_of(instance), self.purpose))
            plaintext = envelope.open_sealed(aead, blob, self.context(instance)).decode()
        except DecryptionError as error:
            _report_decrypt_failure(instance, self, error)
            raise
        if self.purpose == "credentials":
            secret_register(plaintext)  # from now on, this process's logs and reports never show it
        return plaintext


def _report_decrypt_failure(instance, field: EncryptedTextField, error: Exception) -> None:
    """A ciphertext that does not open is a security event: record it (never the bytes)."""
    with transaction.atomic():
        audit_event_record(
            action=CryptoEvent.CRYPTO_DECRYPT_FAILED,
            actor=None,
            workspace_id=field.workspace_id_of(instance),
            outcome=Outcome.FAILED,
            data={
                "table": instance._meta.db_table,
                "column": field.column,
                "row": str(instance.pk),
                "reason": str(error),
            },
        )


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedTextField]]:
    """Every encrypted field of every installed model (what a data key rotation re-encrypts)."""
    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]


def raw_value(value: Any) -> bytes | None:
    """The stored bytes of an encrypted attribute without decrypting it."""
    return bytes(value) if isinstance(value, Sealed) else None
