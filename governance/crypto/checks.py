"""Start-up checks: the configured key provider must be usable before the portal serves anything.

``manage.py check`` (and so every start) reports a missing or world-readable key file, a missing
PKCS#11 module, an unknown token or a wrong PIN, by name. No database access here: the deeper
probe that wraps and unwraps with the platform key is ``manage.py crypto_check``.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core import checks

from governance.crypto.errors import KeyUnavailableError
from governance.crypto.providers import LocalFileProvider, provider_named


@checks.register("crypto")
def key_provider_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    name = settings.CRYPTO_KEY_PROVIDER
    if name not in ("local", "pkcs11"):
        return [
            checks.Error(
                f"CRYPTO_KEY_PROVIDER={name!r} is unknown.", hint="Use 'local' or 'pkcs11'.", id="crypto.E001"
            )
        ]
    try:
        provider = provider_named(name)
        if isinstance(provider, LocalFileProvider):
            provider._read()  # mode and format; a missing file is created on first use
            _check_directory(provider.path)
        else:
            provider._session()
    except KeyUnavailableError as error:
        return [checks.Error(str(error), id="crypto.E002")]
    return []


def _check_directory(path: Path) -> None:
    directory = path.parent
    if directory.exists() and not path.exists() and not _writable(directory):
        raise KeyUnavailableError(
            f"The key directory {directory} is not writable: the key file cannot be created."
        )


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK)
