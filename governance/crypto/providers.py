"""Key providers: where key-encryption keys (KEKs) live and where wrapping happens.

A provider never hands out a KEK; it wraps and unwraps data keys with it. Two kinds:

* ``local`` — a key file (JSON, mode 0600) outside the database, by default ``var/keys/kek.json``;
  created on first use when none exists. Wrapping is AES-256-GCM in this process.
* ``pkcs11`` — a PKCS#11 token (an HSM; SoftHSM2 in the tests). Keys are generated or imported
  non-extractable and sensitive; wrapping is AES-GCM performed by the token.

A workspace's customer-managed key (BYOK) is a KEK row of the workspace naming a key on either
provider: a key label of its own on the token, or key material it imported.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from governance.crypto.errors import KeyUnavailableError

KEY_BYTES = 32
_NONCE = 12


class KeyProvider(Protocol):
    """What the key ring needs from a provider."""

    name: str

    def create_key(self, key_ref: str) -> None: ...
    def import_key(self, key_ref: str, material: bytes) -> None: ...
    def has_key(self, key_ref: str) -> bool: ...
    def wrap(self, key_ref: str, data_key: bytes, binding: bytes) -> bytes: ...
    def unwrap(self, key_ref: str, wrapped: bytes, binding: bytes) -> bytes: ...


def key_check_value(material: bytes) -> str:
    """A key check value to recognise imported material without revealing it: the first three
    bytes of AES-GCM over zeros with a zero nonce (the classic KCV idea, on the cipher we use)."""
    return AESGCM(material).encrypt(bytes(_NONCE), bytes(16), b"kcv")[:3].hex()


# --- local key file ----------------------------------------------------------------------------


@dataclass
class LocalFileProvider:
    """KEKs in a JSON key file outside the database."""

    path: Path
    name: str = "local"

    def __post_init__(self) -> None:
        self._cache: tuple[tuple, dict[str, bytes]] | None = None

    def _read(self) -> dict[str, bytes]:
        """The keys of the file, parsed again only when the file changed (or was replaced)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size, stat.st_mode)
        if self._cache is not None and self._cache[0] == signature:
            return self._cache[1]
        keys = self._parse(stat)
        self._cache = (signature, keys)
        return keys

    def _parse(self, stat) -> dict[str, bytes]:
        if stat.st_mode & 0o077:
            raise KeyUnavailableError(
                f"The key file {self.path} is readable by others (mode {oct(stat.st_mode & 0o777)}); "
                "run chmod 600 on it."
            )
        try:
            document = json.loads(self.path.read_text())
            return {ref: base64.b64decode(value, validate=True) for ref, value in document["keys"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyUnavailableError(f"The key file {self.path} is not a valid key file ({exc}).") from None

    @contextmanager
    def _exclusive(self):
        """Hold the key file's lock: writers in every process take turns (a lost update would lose
        a key-encryption key, and with it every data key it wraps)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.path.with_suffix(".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)

    def _write(self, keys: dict[str, bytes]) -> None:
        """Replace the file atomically (a temporary file in the same directory, fsynced, renamed,
        then the directory fsynced): a crash leaves the old file or the new one, never half."""
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".kek-", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w") as handle:
                encoded = {ref: base64.b64encode(value).decode() for ref, value in keys.items()}
                json.dump({"version": 1, "keys": encoded}, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._cache = None

    def _key(self, key_ref: str) -> bytes:
        keys = self._read()
        if key_ref not in keys:
            where = "is missing" if not self.path.exists() else f"does not hold key {key_ref!r}"
            raise KeyUnavailableError(
                f"The key-encryption key {key_ref!r} is not available: the key file {self.path} {where}. "
                "Restore the key file from its backup; without it the data keys cannot be unwrapped."
            )
        return keys[key_ref]

    def create_key(self, key_ref: str) -> None:
        self.import_key(key_ref, secrets.token_bytes(KEY_BYTES))

    def import_key(self, key_ref: str, material: bytes) -> None:
        if len(material) != KEY_BYTES:
            raise KeyUnavailableError(
                f"A key-encryption key is {KEY_BYTES} bytes (AES-256); got {len(material)}."
            )
        with self._exclusive():
            self._cache = None  # read what is on disk now, under the lock
            keys = dict(self._read())
            if key_ref in keys:
                raise KeyUnavailableError(f"The key file already holds a key named {key_ref!r}.")
            keys[key_ref] = material
            self._write(keys)

    def has_key(self, key_ref: str) -> bool:
        return key_ref in self._read()

    def wrap(self, key_ref: str, data_key: bytes, binding: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(self._key(key_ref)).encrypt(nonce, data_key, binding)

    def unwrap(self, key_ref: str, wrapped: bytes, binding: bytes) -> bytes:
        try:
            return AESGCM(self._key(key_ref)).decrypt(wrapped[:_NONCE], wrapped[_NONCE:], binding)
        except InvalidTag:
            raise KeyUnavailableError(
                f"The key file's key {key_ref!r} does not unwrap this data key: the key file was "
                "replaced or the wrapped key was altered."
            ) from None

    def wrapper(self, key_ref: str) -> LocalWrapper:
        """A wrapper holding the key in memory for a batch (rewrapping thousands of data keys)."""
        return LocalWrapper(AESGCM(self._key(key_ref)))


@dataclass
class LocalWrapper:
    aead: AESGCM

    def wrap(self, data_key: bytes, binding: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self.aead.encrypt(nonce, data_key, binding)

    def unwrap(self, wrapped: bytes, binding: bytes) -> bytes:
        try:
            return self.aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], binding)
        except InvalidTag:
            raise KeyUnavailableError("The key file's key does not unwrap this data key.") from None


# --- PKCS#11 -----------------------------------------------------------------------------------
# python-pkcs11 (with asn1crypto under it) is imported at call time, in the methods below: it adds
# about 80 ms to the start of every process, and only a deployment with an HSM uses it.


@dataclass
class Pkcs11Provider:
    """KEKs inside a PKCS#11 token; the portal only asks the token to wrap and unwrap."""

    module: str
    token_label: str
    pin: str
    name: str = "pkcs11"

    def __post_init__(self) -> None:
        self._local = threading.local()

    def __repr__(self) -> str:  # the PIN never appears in a repr, a log line or an error page
        return f"Pkcs11Provider(module={self.module!r}, token_label={self.token_label!r})"

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is not None:
            return session
        import pkcs11  # at call time: HSM deployments only (see above)
        from pkcs11.exceptions import PKCS11Error

        if not Path(self.module).exists():
            raise KeyUnavailableError(
                f"The PKCS#11 module {self.module} does not exist; install the HSM's library."
            )
        try:
            library = pkcs11.lib(self.module)
            token = library.get_token(token_label=self.token_label)
        except (pkcs11.NoSuchToken, PKCS11Error, RuntimeError) as exc:
            raise KeyUnavailableError(
                f"The HSM token {self.token_label!r} is not reachable through {self.module} ({type(exc).__name__})."
            ) from None
        try:
            session = token.open(user_pin=self.pin, rw=True)
        except pkcs11.exceptions.UserAlreadyLoggedIn:
            # PKCS#11 logs in per application: another session of this process already did.
            session = token.open(rw=True)
        except PKCS11Error as exc:
            raise KeyUnavailableError(
                f"Cannot log in to the HSM token {self.token_label!r} ({type(exc).__name__}); check the PIN."
            ) from None
        self._local.session = session
        self._local.keys = {}
        return session

    def close(self) -> None:
        """Close this thread's session (the token logs out with its last session)."""
        session = getattr(self._local, "session", None)
        self._local.session = None
        if session is not None:
            session.close()

    def _key(self, key_ref: str):
        session = self._session()
        cached = self._local.keys.get(key_ref)
        if cached is not None:
            return cached
        from pkcs11 import KeyType, ObjectClass  # at call time: HSM deployments only (see above)
        from pkcs11.exceptions import NoSuchKey, PKCS11Error

        try:
            key = session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=key_ref)
        except NoSuchKey:
            raise KeyUnavailableError(
                f"The HSM token {self.token_label!r} holds no AES key labelled {key_ref!r}."
            ) from None
        except PKCS11Error as exc:
            self._local.session = None
            raise KeyUnavailableError(f"The HSM did not answer ({type(exc).__name__}).") from None
        self._local.keys[key_ref] = key
        return key

    @staticmethod
    def _template() -> dict:
        from pkcs11 import Attribute  # at call time: HSM deployments only (see above)

        return {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.ENCRYPT: True,
            Attribute.DECRYPT: True,
            Attribute.WRAP: False,
            Attribute.UNWRAP: False,
        }

    def create_key(self, key_ref: str) -> None:
        from pkcs11 import KeyType  # at call time: HSM deployments only (see above)

        if self.has_key(key_ref):
            raise KeyUnavailableError(f"The HSM already holds a key labelled {key_ref!r}.")
        self._session().generate_key(KeyType.AES, 256, label=key_ref, store=True, template=self._template())

    def import_key(self, key_ref: str, material: bytes) -> None:
        from pkcs11 import Attribute, KeyType, ObjectClass  # at call time: HSM deployments only (see above)

        if len(material) != KEY_BYTES:
            raise KeyUnavailableError(
                f"A key-encryption key is {KEY_BYTES} bytes (AES-256); got {len(material)}."
            )
        if self.has_key(key_ref):
            raise KeyUnavailableError(f"The HSM already holds a key labelled {key_ref!r}.")
        attributes = self._template() | {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.LABEL: key_ref,
            Attribute.VALUE: material,
        }
        self._session().create_object(attributes)

    def has_key(self, key_ref: str) -> bool:
        try:
            self._key(key_ref)
        except KeyUnavailableError as exc:
            if "holds no AES key" in str(exc):
                return False
            raise
        return True

    def wrap(self, key_ref: str, data_key: bytes, binding: bytes) -> bytes:
        from pkcs11 import Mechanism  # at call time: HSM deployments only (see above)
        from pkcs11.exceptions import PKCS11Error
        from pkcs11.mechanisms import GCMParams

        nonce = os.urandom(_NONCE)
        try:
            sealed = self._key(key_ref).encrypt(
                data_key, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, binding, 128)
            )
        except PKCS11Error as exc:
            raise KeyUnavailableError(f"The HSM refused to wrap a data key ({type(exc).__name__}).") from None
        return nonce + bytes(sealed)

    def unwrap(self, key_ref: str, wrapped: bytes, binding: bytes) -> bytes:
        from pkcs11 import Mechanism  # at call time: HSM deployments only (see above)
        from pkcs11.exceptions import PKCS11Error
        from pkcs11.mechanisms import GCMParams

        try:
            return bytes(
                self._key(key_ref).decrypt(
                    wrapped[_NONCE:],
                    mechanism=Mechanism.AES_GCM,
                    mechanism_param=GCMParams(wrapped[:_NONCE], binding, 128),
                )
            )
        except PKCS11Error as exc:
            raise KeyUnavailableError(
                f"The HSM key {key_ref!r} does not unwrap this data key ({type(exc).__name__}): "
                "wrong key, or the wrapped key was altered."
            ) from None

    def wrapper(self, key_ref: str) -> Pkcs11Wrapper:
        return Pkcs11Wrapper(self, key_ref)


@dataclass
class Pkcs11Wrapper:
    provider: Pkcs11Provider
    key_ref: str

    def wrap(self, data_key: bytes, binding: bytes) -> bytes:
        return self.provider.wrap(self.key_ref, data_key, binding)

    def unwrap(self, wrapped: bytes, binding: bytes) -> bytes:
        return self.provider.unwrap(self.key_ref, wrapped, binding)


# --- configuration -----------------------------------------------------------------------------

_providers: dict[tuple, KeyProvider] = {}
_lock = threading.Lock()


def provider_named(name: str, *, token_label: str = "") -> KeyProvider:
    """The configured provider of that kind (one instance per configuration and process)."""
    if name == "local":
        config: tuple = ("local", str(settings.CRYPTO_LOCAL_KEY_FILE))
    elif name == "pkcs11":
        module = settings.CRYPTO_PKCS11_MODULE
        label = token_label or settings.CRYPTO_PKCS11_TOKEN_LABEL
        if not module or not label:
            raise KeyUnavailableError(
                "The PKCS#11 provider is not configured: set CRYPTO_PKCS11_MODULE and CRYPTO_PKCS11_TOKEN_LABEL."
            )
        config = ("pkcs11", module, label, settings.CRYPTO_PKCS11_PIN or "")
    else:
        raise KeyUnavailableError(f"Unknown key provider {name!r}; use 'local' or 'pkcs11'.")
    with _lock:
        if config not in _providers:
            if name == "local":
                _providers[config] = LocalFileProvider(Path(config[1]))
            else:
                _providers[config] = Pkcs11Provider(module=config[1], token_label=config[2], pin=config[3])
        return _providers[config]


def forget_providers() -> None:
    """Drop cached provider instances (after a configuration change, and between tests)."""
    with _lock:
        for provider in _providers.values():
            if isinstance(provider, Pkcs11Provider):
                provider.close()
        _providers.clear()
