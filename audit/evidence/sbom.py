"""The portal's SBOM (CycloneDX 1.5) from the locked dependencies.

First choice is ``uv export --format cyclonedx1.5`` (the Makefile's ``sbom`` target), which reads
``uv.lock`` without network access (``--frozen``). Where uv is not installed (a slim production
image) a minimal CycloneDX document is made from ``uv.lock`` directly: every package reachable
from the project's runtime dependencies, with its purl and the locked distribution hashes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from audit.canonical import format_time

UV_ARGS = ("export", "--frozen", "--no-dev", "--preview-features", "sbom-export", "--format", "cyclonedx1.5")


def _uv() -> str | None:
    beside_python = Path(sys.executable).with_name("uv")
    return str(beside_python) if beside_python.exists() else shutil.which("uv")


def _uv_export(project: Path) -> bytes | None:
    uv = _uv()
    if uv is None:
        return None
    try:
        result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [uv, *UV_ARGS, "--project", str(project)],
            capture_output=True,
            timeout=120,
            check=False,
            cwd=project,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    try:
        document = json.loads(result.stdout)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        return None
    return result.stdout


def _runtime_closure(packages: dict[str, dict], root: dict) -> list[str]:
    """Names reachable from the root's runtime dependencies (extras followed, markers ignored)."""
    seen: set[str] = set()
    pending = list(root.get("dependencies", []))
    while pending:
        dependency = pending.pop()
        name = dependency["name"]
        package = packages.get(name)
        if package is None:
            continue
        for extra in dependency.get("extra", []):
            pending.extend(package.get("optional-dependencies", {}).get(extra, []))
        if name in seen:
            continue
        seen.add(name)
        pending.extend(package.get("dependencies", []))
    return sorted(seen)


def sbom_from_lock(lock_file: Path) -> bytes:
    """A minimal CycloneDX 1.5 SBOM from ``uv.lock`` (runtime dependencies only)."""
    lock = tomllib.loads(lock_file.read_text(encoding="utf-8"))
    packages = {package["name"]: package for package in lock.get("package", [])}
    root = next(
        (
            p
            for p in packages.values()
            if "editable" in p.get("source", {}) or "virtual" in p.get("source", {})
        ),
        {},
    )
    components = []
    for name in _runtime_closure(packages, root):
        package = packages[name]
        hashes = []
        for dist in [package.get("sdist"), *package.get("wheels", [])]:
            if dist and str(dist.get("hash", "")).startswith("sha256:"):
                hashes.append({"alg": "SHA-256", "content": dist["hash"].removeprefix("sha256:")})
        component = {
            "type": "library",
            "bom-ref": f"{name}@{package.get('version')}",
            "name": name,
            "version": package.get("version", ""),
            "purl": f"pkg:pypi/{name}@{package.get('version')}",
        }
        if hashes:
            component["hashes"] = hashes
        components.append(component)
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "metadata": {
            "timestamp": format_time(timezone.now()),
            "tools": [{"name": "governance-portal evidence builder (from uv.lock; uv was not available)"}],
            "component": {
                "type": "application",
                "name": root.get("name", "governance-portal"),
                "version": root.get("version", ""),
            },
        },
        "components": components,
    }
    return json.dumps(document, indent=2, sort_keys=True).encode()


def sbom_document() -> tuple[bytes, str]:
    """(CycloneDX JSON bytes, how it was made)."""
    project = Path(settings.BASE_DIR)
    exported = _uv_export(project)
    if exported is not None:
        return exported, "uv export --format cyclonedx1.5 (uv.lock, runtime dependencies)"
    fallback = "minimal CycloneDX 1.5 made from uv.lock (uv was not available)"
    return sbom_from_lock(project / "uv.lock"), fallback
