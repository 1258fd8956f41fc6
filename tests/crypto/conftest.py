"""Key fixtures: a fresh key file per test, a SoftHSM2 token for the session, an integration."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from governance.crypto import keyring, providers
from tests.tools import unavailable

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_LABEL = "portal-test"
USER_PIN = "246810"  # a throwaway token made by this fixture


@pytest.fixture(autouse=True)
def key_file(tmp_path, settings):
    """Every test starts with no key file and no cached key."""
    settings.CRYPTO_LOCAL_KEY_FILE = str(tmp_path / "keys" / "kek.json")
    settings.CRYPTO_KEY_PROVIDER = "local"
    providers.forget_providers()
    keyring.forget_keys()
    yield Path(settings.CRYPTO_LOCAL_KEY_FILE)
    providers.forget_providers()
    keyring.forget_keys()


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory):
    """A SoftHSM2 token initialised for this test session (module from Debian's softhsm2)."""
    if not Path(SOFTHSM_MODULE).exists() or shutil.which("softhsm2-util") is None:
        unavailable("SoftHSM2 is not installed (Debian: apt-get install softhsm2)")
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    config = directory / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(config)
    subprocess.run(  # noqa: S603 - fixed arguments, Debian's softhsm2-util
        [shutil.which("softhsm2-util"), "--init-token", "--free", "--label", TOKEN_LABEL, "--so-pin", "13579246", "--pin", USER_PIN],
        check=True, capture_output=True,
    )  # fmt: skip
    return TOKEN_LABEL


@pytest.fixture
def hsm(softhsm_token, settings):
    """Make the SoftHSM token the platform's key provider for one test."""
    settings.CRYPTO_KEY_PROVIDER = "pkcs11"
    settings.CRYPTO_PKCS11_MODULE = SOFTHSM_MODULE
    settings.CRYPTO_PKCS11_TOKEN_LABEL = softhsm_token
    settings.CRYPTO_PKCS11_PIN = USER_PIN
    providers.forget_providers()
    keyring.forget_keys()
    return providers.provider_named("pkcs11")


@pytest.fixture
def integration(world):
    from workflows.integrations.models import Integration

    return Integration.objects.create(workspace=world.ws, name="CRM", slug="crm", kind="crm")
