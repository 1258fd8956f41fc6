"""What can go wrong with keys and ciphertexts, each error naming the cause in words an operator
can act on. None of them ever carries plaintext or key material."""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every error of the encryption layer."""


class KeyUnavailableError(CryptoError):
    """A key-encryption key cannot be used: missing file, wrong key, unreachable HSM, wrong PIN.

    Nothing is written when this is raised: the caller's transaction rolls back."""


class DecryptionError(CryptoError):
    """A ciphertext does not open: corrupted, truncated, copied to another row, or its data key
    was destroyed. Raised instead of returning anything."""


class KeyDestroyedError(DecryptionError):
    """The data key was destroyed on purpose (crypto-shredding): the data is gone for good."""
