"""The OpenID provider for the tests: ``oidc/server.mjs`` (oidc-provider) in a subprocess."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.identity_providers.common import free_port, private_jwk, rsa_key
from tests.tools import unavailable

HERE = Path(__file__).resolve().parent / "oidc"

ACCOUNTS = {
    # login: claims. "ada" signs in with MFA (amr mfa+otp, acr ...:mfa); "bob" with a password only.
    "ada": {"password": "ada-idp-pass", "sub": "sub-ada", "email": "ada@acme.example", "email_verified": True,
            "name": "Ada Lovelace", "groups": ["portal-builders", "staff"], "amr": ["pwd", "otp", "mfa"],
            "acr": "urn:portal:test:mfa"},
    "bob": {"password": "bob-idp-pass", "sub": "sub-bob", "email": "bob@acme.example", "email_verified": True,
            "name": "Bob", "groups": ["portal-viewers"], "amr": ["pwd"], "acr": "urn:portal:test:pwd"},
    "eve": {"password": "eve-idp-pass", "sub": "sub-eve", "email": "owner@globex.example", "email_verified": True,
            "name": "Eve", "groups": ["portal-builders"], "amr": ["pwd"]},
}  # fmt: skip


@dataclass
class OpenIDProvider:
    issuer: str
    client_id: str
    client_secret: str
    key: object
    kid: str
    process: subprocess.Popen
    accounts: dict = field(default_factory=dict)


def node_ready() -> str | None:
    """The path of node, or None (then the caller skips, or fails under CI)."""
    node = shutil.which("node")
    if node is None:
        unavailable(
            "Node.js is not installed: the OpenID provider tests need it (Debian: apt-get install nodejs npm)"
        )
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        unavailable("oidc-provider is not installed: run scripts/ensure-node-deps.sh (make pytest does)")
    return node


def start(redirect_uris: list[str]) -> OpenIDProvider:
    node = node_ready()
    port = free_port()
    key, kid = rsa_key(), "test-" + secrets.token_hex(4)
    client_id, client_secret = "portal-" + secrets.token_hex(4), secrets.token_urlsafe(24)
    config = {
        "port": port, "signing_jwk": private_jwk(key, kid), "cookie_key": secrets.token_urlsafe(24),
        "client": {"id": client_id, "secret": client_secret, "redirect_uris": redirect_uris},
        "accounts": ACCOUNTS,
    }  # fmt: skip
    handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
    json.dump(config, handle)
    handle.close()
    process = subprocess.Popen(  # noqa: S603
        [node, str(HERE / "server.mjs"), handle.name], cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    line = process.stdout.readline()
    Path(handle.name).unlink()
    if not line.startswith("READY "):
        process.kill()
        raise RuntimeError(f"the OpenID provider did not start: {line}{process.stderr.read()}")
    return OpenIDProvider(line.split()[1], client_id, client_secret, key, kid, process, ACCOUNTS)


def stop(provider: OpenIDProvider) -> None:
    provider.process.terminate()
    provider.process.wait(timeout=10)
