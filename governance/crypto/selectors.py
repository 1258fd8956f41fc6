"""Reads of the key store: where values encrypted under a data key are, and how many."""

from __future__ import annotations

import struct

from django.db import connections, router

from governance.crypto import envelope
from governance.crypto.fields import encrypted_fields
from governance.crypto.models import DataKey


def ciphertext_prefix(key_id: int) -> bytes:
    """The first bytes of every value encrypted under data key ``key_id`` (format version, key id)."""
    return struct.pack(">BQ", envelope.FORMAT_VERSION, key_id)


def encrypted_fields_for(purpose: str) -> list:
    """(model, field) of every encrypted field whose values use data keys of ``purpose``."""
    return [(model, field) for model, field in encrypted_fields() if field.purpose == purpose]


def values_under(data_key: DataKey) -> int:
    """How many stored values are encrypted under ``data_key`` (read from the ciphertext headers)."""
    total = 0
    for model, field in encrypted_fields_for(data_key.purpose):
        connection = connections[router.db_for_read(model)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {connection.ops.quote_name(model._meta.db_table)} "  # noqa: S608
                f"WHERE substr({connection.ops.quote_name(field.column)}, 1, 9) = %s",
                [ciphertext_prefix(data_key.pk)],
            )
            total += cursor.fetchone()[0]
    return total
