"""The ledger's signing key (Ed25519), kept outside the database, and the tree-head statement.

The key comes from ``LEDGER_SIGNING_KEY`` (base64 of the 32-byte private seed) or from the PEM
file ``LEDGER_SIGNING_KEY_FILE``. The quick-start and test profiles create that file (mode
0600) on first use; production refuses to sign without a configured key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit.canonical import format_time

STATEMENT_VERSION = 1


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 bytes of SHA-256 over the raw public key, in hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: bytes | str) -> Ed25519PublicKey:
    """Read a PEM public key; refuse anything but Ed25519."""
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("The ledger's public key must be an Ed25519 key.")
    return key


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)


def load_signing_key() -> Ed25519PrivateKey:
    """The private key that signs tree heads, from the environment or the key file."""
    encoded = getattr(settings, "LEDGER_SIGNING_KEY", None)
    if encoded:
        try:
            return Ed25519PrivateKey.from_private_bytes(base64.b64decode(encoded, validate=True))
        except ValueError:
            raise ImproperlyConfigured(
                "LEDGER_SIGNING_KEY must be the base64 of a 32-byte Ed25519 seed."
            ) from None
    path_setting = getattr(settings, "LEDGER_SIGNING_KEY_FILE", None)
    if not path_setting:
        raise ImproperlyConfigured("Set LEDGER_SIGNING_KEY_FILE or LEDGER_SIGNING_KEY to sign the ledger.")
    path = Path(path_setting)
    if not path.exists():
        if not getattr(settings, "LEDGER_SIGNING_KEY_AUTOCREATE", False):
            raise ImproperlyConfigured(f"The ledger signing key file {path} does not exist.")
        _create_key_file(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{path} does not hold an Ed25519 private key.")
    return key


@dataclass(frozen=True)
class TreeHeadStatement:
    """What a signed tree head says; its RFC 8785 bytes are what the key signs."""

    number: int
    tree_size: int
    root_hash: bytes
    issued_at: datetime
    key_id: str

    def to_bytes(self) -> bytes:
        return rfc8785.dumps(
            {
                "v": STATEMENT_VERSION,
                "number": self.number,
                "tree_size": self.tree_size,
                "root_hash": self.root_hash.hex(),
                "issued_at": format_time(self.issued_at),
                "key_id": self.key_id,
            }
        )


def sign_statement(statement: TreeHeadStatement, key: Ed25519PrivateKey) -> bytes:
    return key.sign(statement.to_bytes())


def verify_statement(statement: TreeHeadStatement, signature: bytes, public_key: Ed25519PublicKey) -> bool:
    try:
        public_key.verify(bytes(signature), statement.to_bytes())
    except InvalidSignature:
        return False
    return True
