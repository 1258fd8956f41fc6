"""What can go wrong with keys and ciphertexts, each error naming the cause in words an operator
can act on. None of them ever carries plaintext or key material."""

from __future__ import annotations

from governance.core.errors import ExplainedError


class CryptoError(ExplainedError):
    """Base class of every error of the encryption layer."""

    log_name = "governance.crypto"

    def explain(self) -> tuple[int, str]:
        return explain(self)


class KeyUnavailableError(CryptoError):
    """A key-encryption key cannot be used: missing file, wrong key, unreachable HSM, wrong PIN.

    Nothing is written when this is raised: the caller's transaction rolls back."""


class DecryptionError(CryptoError):
    """A ciphertext does not open: corrupted, truncated, copied to another row, or its data key
    was destroyed. Raised instead of returning anything."""


class KeyDestroyedError(DecryptionError):
    """The data key was destroyed on purpose (crypto-shredding): the data is gone for good."""


def explain(error: CryptoError) -> tuple[int, str]:
    """The HTTP status and the message a person sees when a request meets ``error``: unavailable
    keys are the service's trouble (503, try later), a value that does not open is a data fault
    (500, recorded in the ledger). The operator's detail goes to the log, with the request id."""
    if isinstance(error, KeyUnavailableError):
        return 503, (
            "The encryption keys are unavailable right now (the key provider does not answer), so "
            "nothing was read or saved. Please try again later; operators have been told."
        )
    if isinstance(error, KeyDestroyedError):
        return 410, "This value was erased for good: its encryption key was destroyed."
    return 500, (
        "A stored value could not be decrypted: it was altered or copied from elsewhere. Nothing was "
        "changed; the attempt is recorded in the audit ledger."
    )
