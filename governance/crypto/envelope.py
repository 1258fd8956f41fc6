"""The ciphertext format: AES-256-GCM under a data key, bound to where the value lives.

    byte 0        format version (1)
    bytes 1-8     data key id (unsigned, big-endian)
    bytes 9-20    nonce (96 bits, random per value)
    bytes 21-     ciphertext followed by the 128-bit tag

The associated data is the 21-byte header followed by the value's *context* — table, column and
row id — so a ciphertext copied to another row, column or table, or whose header was edited to
name another key, fails authentication instead of decrypting.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from governance.crypto.errors import DecryptionError

FORMAT_VERSION = 1
_HEADER = struct.Struct(">BQ12s")
HEADER_SIZE = _HEADER.size  # 21
TAG_SIZE = 16
NONCE_SIZE = 12


@dataclass(frozen=True)
class Header:
    """The readable part of a ciphertext: which format and which data key."""

    version: int
    key_id: int
    nonce: bytes


def context_of(table: str, column: str, row_id: object) -> bytes:
    """The associated data naming where a value belongs (NUL-separated: names never hold NUL)."""
    return f"{table}\x00{column}\x00{row_id}".encode()


def header_of(blob: bytes) -> Header:
    """Parse the header; refuse anything that is not a ciphertext of this format."""
    if len(blob) < HEADER_SIZE + TAG_SIZE:
        raise DecryptionError("The ciphertext is truncated (shorter than a header and a tag).")
    version, key_id, nonce = _HEADER.unpack_from(blob)
    if version != FORMAT_VERSION:
        raise DecryptionError(f"Unknown ciphertext format version {version}.")
    return Header(version, key_id, nonce)


def seal(aead: AESGCM, key_id: int, plaintext: bytes, context: bytes) -> bytes:
    """Encrypt ``plaintext`` under the data key ``key_id`` for the place named by ``context``."""
    header = _HEADER.pack(FORMAT_VERSION, key_id, os.urandom(NONCE_SIZE))
    return header + aead.encrypt(header[9:], plaintext, header + context)


def open_sealed(aead: AESGCM, blob: bytes, context: bytes) -> bytes:
    """Decrypt a ciphertext made by :func:`seal` for the same context, or raise DecryptionError."""
    header = bytes(blob[:HEADER_SIZE])
    try:
        return aead.decrypt(header[9:], bytes(blob[HEADER_SIZE:]), header + context)
    except InvalidTag:
        raise DecryptionError(
            "The ciphertext does not authenticate: it was altered, or it belongs to another row."
        ) from None
