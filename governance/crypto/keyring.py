"""The key ring: finds the active data key for a workspace and purpose, unwraps data keys through
their KEK's provider, and keeps unwrapped keys in this process's memory for a short while.

Unwrapped data keys live only in memory (``CRYPTO_KEY_CACHE_SECONDS``, default 60 s): a key
retired or destroyed elsewhere stops being used here within that time. Keys created by a
transaction that has not committed yet are never cached, so a rollback cannot leave this process
encrypting under a key that does not exist.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from audit.services import audit_event_record
from governance.crypto.errors import DecryptionError, KeyDestroyedError, KeyUnavailableError
from governance.crypto.events import CryptoEvent
from governance.crypto.models import DataKey, DataKeyStatus, KeyEncryptionKey, KeyStatus
from governance.crypto.providers import KEY_BYTES, provider_named
from governance.tenancy.models import Workspace


@dataclass(frozen=True)
class ActiveKey:
    """An unwrapped data key ready to encrypt: its id goes into every ciphertext header."""

    key_id: int
    aead: AESGCM


_lock = threading.Lock()
_by_id: dict[int, tuple[AESGCM, float, tuple[int | None, str]]] = {}
_active: dict[tuple, tuple[ActiveKey, float]] = {}
_uncommitted: set[int] = set()


def _ttl() -> float:
    return float(settings.CRYPTO_KEY_CACHE_SECONDS)


def forget_keys() -> None:
    """Drop every unwrapped key from this process (after a rotation, destruction, or in tests)."""
    with _lock:
        _by_id.clear()
        _active.clear()


def provider_of(kek: KeyEncryptionKey):
    return provider_named(kek.provider, token_label=kek.token_label)


def unwrap(data_key: DataKey) -> bytes:
    """The data key's bytes, unwrapped by its KEK's provider (raises KeyUnavailableError)."""
    kek = data_key.kek
    return provider_of(kek).unwrap(kek.key_ref, bytes(data_key.wrapped), data_key.binding())


def aead_for(key_id: int, *, owner: tuple[int | None, str] | None = None) -> AESGCM:
    """The cipher of data key ``key_id`` for decryption: active and retiring keys open, a retired
    one for a short grace; a destroyed key raises KeyDestroyedError. ``owner`` — the (workspace
    id, purpose) of the row being read — must be the key's own: a ciphertext moved to a row of
    another workspace (or purpose) is refused even though its header names a real key."""
    now = time.monotonic()
    with _lock:
        hit = _by_id.get(key_id)
    if hit is None or hit[1] <= now:
        hit = _load(key_id, now)
    aead, _expiry, key_owner = hit
    if owner is not None and owner != key_owner:
        raise DecryptionError(
            f"The ciphertext names data key {key_id} of another workspace or purpose than its row's."
        )
    return aead


def _load(key_id: int, now: float) -> tuple[AESGCM, float, tuple[int | None, str]]:
    data_key = DataKey.objects.select_related("kek").filter(pk=key_id).first()
    if data_key is None:
        raise DecryptionError(f"The ciphertext names data key {key_id}, which does not exist.")
    if data_key.status == DataKeyStatus.DESTROYED:
        raise KeyDestroyedError(
            f"Data key {key_id} was destroyed on {data_key.destroyed_at:%Y-%m-%d}: the value is gone."
        )
    if data_key.status == DataKeyStatus.RETIRED and _past_grace(data_key):
        raise DecryptionError(
            f"Data key {key_id} was retired on {data_key.retired_at:%Y-%m-%d %H:%M} after its values were "
            "re-encrypted; a value still under it was written by an outdated copy."
        )
    hit = (AESGCM(unwrap(data_key)), now + _ttl(), (data_key.workspace_id, data_key.purpose))
    if key_id not in _uncommitted:
        with _lock:
            _by_id[key_id] = hit
    return hit


def _past_grace(data_key: DataKey) -> bool:
    """A retired key still opens for a short while: reads that fetched a value just before the
    rotation's last batch finish cleanly."""
    grace = float(settings.CRYPTO_RETIRED_KEY_GRACE_SECONDS)
    return data_key.retired_at is None or (timezone.now() - data_key.retired_at).total_seconds() > grace


def active_key(workspace_id: int | None, purpose: str, subject: str = "") -> ActiveKey:
    """The data key that encrypts new values of this workspace and purpose, created on first use."""
    slot = (workspace_id, purpose, subject)
    now = time.monotonic()
    with _lock:
        hit = _active.get(slot)
    if hit is not None and hit[1] > now:
        return hit[0]
    data_key = (
        DataKey.objects.select_related("kek")
        .filter(workspace_id=workspace_id, purpose=purpose, subject=subject, status=DataKeyStatus.ACTIVE)
        .first()
    )
    if data_key is None:
        data_key = _create_data_key(workspace_id, purpose, subject)
    key = ActiveKey(data_key.pk, AESGCM(unwrap(data_key)))
    if data_key.pk not in _uncommitted:
        with _lock:
            _active[slot] = (key, now + _ttl())
            _by_id[data_key.pk] = (key.aead, now + _ttl(), (workspace_id, purpose))
    return key


def active_kek(workspace_id: int | None) -> KeyEncryptionKey:
    """The workspace's own KEK (BYOK) when it has one, else the platform's, created on first use.

    Inside a transaction the row is locked (FOR UPDATE): a data key created while its KEK is being
    rotated waits for the rotation and is wrapped by the new KEK, never the retiring one. A
    workspace that has a key of its own never falls back to the platform's."""
    for _attempt in range(3):
        # After waiting on a rotation's lock the retired row no longer matches and the new one is
        # not in that statement's snapshot: the next statement sees it.
        if workspace_id is not None:
            own = _active_kek_row(workspace_id=workspace_id)
            if own is not None:
                return own
            if KeyEncryptionKey.objects.filter(workspace_id=workspace_id).exists():
                continue
        platform = _active_kek_row(workspace_id=None)
        if platform is not None:
            return platform
        if not KeyEncryptionKey.objects.filter(workspace__isnull=True).exists():
            return kek_create(workspace_id=None, provider=settings.CRYPTO_KEY_PROVIDER)
    raise KeyUnavailableError(
        "No active key-encryption key: the workspace's own key or the platform's is retired without "
        "a successor. Rotate it (manage.py crypto_rotate_kek)."
    )


def _active_kek_row(*, workspace_id: int | None) -> KeyEncryptionKey | None:
    rows = KeyEncryptionKey.objects.filter(workspace_id=workspace_id, status=KeyStatus.ACTIVE)
    if transaction.get_connection().in_atomic_block:
        rows = rows.select_for_update()
    return rows.first()


def new_key_ref(workspace_id: int | None, version: int) -> str:
    owner = f"ws{workspace_id}" if workspace_id else "platform"
    return f"portal-kek-{owner}-v{version}-{secrets.token_hex(4)}"


def kek_create(*, workspace_id: int | None, provider: str, token_label: str = "") -> KeyEncryptionKey:
    """Generate a KEK in the provider and record it (the caller retires the previous one)."""
    with transaction.atomic():
        version = (
            KeyEncryptionKey.objects.filter(workspace_id=workspace_id).aggregate(v=Max("version"))["v"] or 0
        ) + 1
        key_ref = new_key_ref(workspace_id, version)
        provider_named(provider, token_label=token_label).create_key(key_ref)
        kek = KeyEncryptionKey.objects.create(
            workspace_id=workspace_id,
            provider=provider,
            token_label=token_label,
            key_ref=key_ref,
            version=version,
        )
        audit_event_record(
            action=CryptoEvent.KEY_CREATED,
            actor=None,
            target=kek,
            workspace_id=workspace_id,
            data={"provider": provider, "version": version, "key_ref": key_ref},
        )
    return kek


def _create_data_key(workspace_id: int | None, purpose: str, subject: str) -> DataKey:
    """Create the first data key of a slot; a concurrent creator wins cleanly (we use theirs)."""
    try:
        with transaction.atomic():
            data_key = data_key_new(workspace_id=workspace_id, purpose=purpose, subject=subject, version=1)
            audit_event_record(
                action=CryptoEvent.DATA_KEY_CREATED,
                actor=None,
                target=data_key,
                workspace_id=workspace_id,
                data={"purpose": purpose, "version": 1, "kek_version": data_key.kek.version},
            )
    except IntegrityError:
        existing = (
            DataKey.objects.select_related("kek")
            .filter(workspace_id=workspace_id, purpose=purpose, subject=subject, status=DataKeyStatus.ACTIVE)
            .first()
        )
        if existing is None:
            raise
        return existing
    return data_key


def data_key_new(*, workspace_id: int | None, purpose: str, subject: str, version: int) -> DataKey:
    """Insert a fresh random data key, wrapped by the active KEK (inside the caller's transaction).

    The workspace row is locked first, as by ``workspace_key_configure``: a data key created while
    the workspace takes its own key is either rewrapped by it or wrapped under it, never missed."""
    if workspace_id is not None:
        Workspace.objects.select_for_update().filter(pk=workspace_id).first()
    kek = active_kek(workspace_id)
    data_key = DataKey(workspace_id=workspace_id, purpose=purpose, subject=subject, version=version, kek=kek)
    material = secrets.token_bytes(KEY_BYTES)
    data_key.wrapped = provider_of(kek).wrap(kek.key_ref, material, data_key.binding())
    data_key.save()
    _uncommitted.add(data_key.pk)
    transaction.on_commit(lambda: _uncommitted.discard(data_key.pk))
    return data_key


def check_provider(name: str, token_label: str = "") -> str:
    """A start-up probe: wrap and unwrap with the active platform KEK. Returns what was checked."""
    kek = KeyEncryptionKey.objects.filter(workspace__isnull=True, status=KeyStatus.ACTIVE).first()
    if kek is None:
        return "no platform key yet (created on first use)"
    probe = secrets.token_bytes(KEY_BYTES)
    provider = provider_of(kek)
    if provider.unwrap(kek.key_ref, provider.wrap(kek.key_ref, probe, b"probe"), b"probe") != probe:
        raise KeyUnavailableError(f"The platform KEK v{kek.version} does not round-trip.")
    return f"platform KEK v{kek.version} on {kek.get_provider_display()} answers"
