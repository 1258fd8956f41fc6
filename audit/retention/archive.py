"""The signed archive of an archive-then-prune run: what keeps pruned events verifiable.

A ZIP with:

- ``events.jsonl`` — one line per pruned event, in sequence order:
  ``{"canonical": <the event's canonical JSON, as a string>, "sequence": n}``;
- ``tree-head.json`` — the signed tree head the run pruned under (its size bounds the run);
- ``latest-head.json`` — the latest signed tree head when the archive was written;
- ``proof.json`` — a batch proof (``audit.merkle.batch_path``) that rebuilds the first head's root
  from the archived events' leaf hashes, and the consistency proof from it to the latest head;
- ``public-key.pem``, ``manifest.json`` (every file's size and SHA-256) and ``manifest.sig``
  (Ed25519 over ``MANIFEST_CONTEXT`` and the manifest's bytes).

Anyone with the ledger's public key checks it offline (``verify.py archive.zip``, the evidence
packages' verifier, which recognises archives); ``archive_check`` below is the same check, run by
the job before it deletes anything.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import zipfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import merkle
from audit.canonical import format_time
from audit.models import MerkleTile, SignedTreeHead
from audit.proofs import SealedTree
from audit.signing import TreeHeadStatement, key_id_of, public_key_pem, verify_statement

ARCHIVE_FORMAT = 1
KIND = "ledger-archive"
MANIFEST = "manifest.json"
MANIFEST_SIGNATURE = "manifest.sig"
MANIFEST_CONTEXT = b"governance-portal/ledger-archive-manifest/v1\n"
EVENTS = "events.jsonl"
PROOF = "proof.json"
TREE_HEAD = "tree-head.json"
LATEST_HEAD = "latest-head.json"
PUBLIC_KEY = "public-key.pem"
TILE = MerkleTile.TILE_SIZE


class ArchiveError(ValueError):
    """The archive cannot be written or does not verify; the message says why."""


def head_document(head: SignedTreeHead) -> dict[str, Any]:
    return {
        "number": head.number,
        "tree_size": head.tree_size,
        "root_hash": bytes(head.root_hash).hex(),
        "issued_at": format_time(head.issued_at),
        "key_id": head.key_id,
        "signature": base64.b64encode(bytes(head.signature)).decode(),
    }


def _json(document: Any) -> bytes:
    return (json.dumps(document, sort_keys=True, ensure_ascii=True, separators=(",", ":")) + "\n").encode()


class _BoundedTree(SealedTree):
    """``SealedTree`` keeping the leaves of a few tiles only: a batch proof walks left to right."""

    MAX_TILES = 4

    def _leaves_of_tile(self, tile: int) -> list[bytes]:
        if tile not in self._tile_leaves and len(self._tile_leaves) >= self.MAX_TILES:
            self._tile_leaves.clear()
        return super()._leaves_of_tile(tile)


@dataclass(frozen=True)
class WrittenArchive:
    path: Path
    events: int
    first_sequence: int | None
    last_sequence: int | None
    file_sha256: str
    manifest_sha256: str
    size: int


def archive_write(
    *,
    path: Path,
    run_uid: str,
    head: SignedTreeHead,
    latest: SignedTreeHead,
    rows: Iterator[tuple[int, bytes]],
    key: Ed25519PrivateKey,
    description: dict[str, Any],
    progress=None,
) -> WrittenArchive:
    """Write the archive of ``rows`` ((sequence, canonical bytes), in sequence order, each within
    ``head``) to ``path`` (through a temporary file, renamed when complete)."""
    temporary = path.with_name(path.name + ".partial")
    sequences = array("q")
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        digest, size = hashlib.sha256(), 0
        with archive.open(EVENTS, "w", force_zip64=True) as handle:
            pending: list[bytes] = []
            for sequence, canonical in rows:
                if sequences and sequence <= sequences[-1]:
                    raise ArchiveError(
                        f"Events must come in sequence order ({sequence} after {sequences[-1]})."
                    )
                if sequence > head.tree_size:
                    raise ArchiveError(f"Event {sequence} is beyond tree head #{head.number}.")
                sequences.append(sequence)
                pending.append(_json({"canonical": bytes(canonical).decode("utf-8"), "sequence": sequence}))
                if len(pending) >= 2048:
                    chunk = b"".join(pending)
                    digest.update(chunk)
                    size += len(chunk)
                    handle.write(chunk)
                    pending = []
                    if progress is not None:
                        progress("archiving", len(sequences))
            chunk = b"".join(pending)
            digest.update(chunk)
            size += len(chunk)
            handle.write(chunk)
        files.append({"name": EVENTS, "sha256": digest.hexdigest(), "size": size})
        if not sequences:
            raise ArchiveError("No event to archive.")
        indices = [sequence - 1 for sequence in sequences]
        batch = merkle.batch_path(indices, head.tree_size, _BoundedTree(head.tree_size).subtree_root)
        consistency = merkle.consistency_path(
            head.tree_size, latest.tree_size, _BoundedTree(latest.tree_size).subtree_root
        )
        documents = {
            PROOF: _json(
                {
                    "tree_size": head.tree_size,
                    "batch_path": [node.hex() for node in batch],
                    "consistency": {
                        "from_size": head.tree_size,
                        "to_size": latest.tree_size,
                        "path": [node.hex() for node in consistency],
                    },
                }
            ),
            TREE_HEAD: _json(head_document(head)),
            LATEST_HEAD: _json(head_document(latest)),
            PUBLIC_KEY: public_key_pem(key.public_key()).encode(),
        }
        for name, content in documents.items():
            archive.writestr(name, content)
            files.append({"name": name, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)})
        manifest = {
            "format": ARCHIVE_FORMAT,
            "kind": KIND,
            "archive": run_uid,
            "written_at": format_time(datetime.now(UTC)),
            "key_id": key_id_of(key.public_key()),
            "tree_head": head.number,
            "latest_head": latest.number,
            "events": len(sequences),
            "first_sequence": sequences[0],
            "last_sequence": sequences[-1],
            "description": description,
            "files": files,
        }
        manifest_bytes = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=True).encode() + b"\n"
        archive.writestr(MANIFEST, manifest_bytes)
        archive.writestr(
            MANIFEST_SIGNATURE, base64.b64encode(key.sign(MANIFEST_CONTEXT + manifest_bytes)) + b"\n"
        )
    file_digest = hashlib.sha256()
    with temporary.open("rb") as handle:
        while block := handle.read(1 << 20):
            file_digest.update(block)
    temporary.replace(path)
    return WrittenArchive(
        path=path,
        events=len(sequences),
        first_sequence=sequences[0],
        last_sequence=sequences[-1],
        file_sha256=file_digest.hexdigest(),
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        size=path.stat().st_size,
    )


def _statement(document: dict[str, Any]) -> TreeHeadStatement:
    return TreeHeadStatement(
        number=document["number"],
        tree_size=document["tree_size"],
        root_hash=bytes.fromhex(document["root_hash"]),
        issued_at=datetime.fromisoformat(document["issued_at"].replace("Z", "+00:00")),
        key_id=document["key_id"],
    )


def archive_events(path: Path) -> Iterator[tuple[int, bytes]]:
    """The (sequence, canonical bytes) of an archive's events, in order."""
    with zipfile.ZipFile(path) as archive, archive.open(EVENTS) as handle:
        for line in handle:
            document = json.loads(line)
            yield document["sequence"], document["canonical"].encode("utf-8")


def archive_check(path: Path, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Verify an archive as the offline verifier does; return its manifest, or raise ArchiveError."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest_bytes = archive.read(MANIFEST)
            signature = base64.b64decode(archive.read(MANIFEST_SIGNATURE))
            try:
                public_key.verify(signature, MANIFEST_CONTEXT + manifest_bytes)
            except InvalidSignature:
                raise ArchiveError(
                    "The manifest's signature does not verify with the ledger's key."
                ) from None
            manifest = json.loads(manifest_bytes)
            for entry in manifest["files"]:
                digest, size = hashlib.sha256(), 0
                with archive.open(entry["name"]) as handle:
                    while block := handle.read(1 << 20):
                        digest.update(block)
                        size += len(block)
                if digest.hexdigest() != entry["sha256"] or size != entry["size"]:
                    raise ArchiveError(f"{entry['name']} is not the file the manifest signs.")
            head = json.loads(archive.read(TREE_HEAD))
            latest = json.loads(archive.read(LATEST_HEAD))
            proof = json.loads(archive.read(PROOF))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        if isinstance(error, ArchiveError):
            raise
        raise ArchiveError(f"The archive cannot be read: {error}") from error
    for document in (head, latest):
        if not verify_statement(_statement(document), base64.b64decode(document["signature"]), public_key):
            raise ArchiveError(f"Tree head #{document['number']} in the archive has an invalid signature.")
    sequences = array("q", (sequence for sequence, _ in archive_events(path)))
    if len(sequences) != manifest["events"] or any(b <= a for a, b in itertools.pairwise(sequences)):
        raise ArchiveError("The archive's events are not the manifest's count, or not in sequence order.")
    leaves = (merkle.leaf_hash(canonical) for _, canonical in archive_events(path))
    root = merkle.root_from_batch(
        [sequence - 1 for sequence in sequences],
        head["tree_size"],
        leaves,
        [bytes.fromhex(node) for node in proof["batch_path"]],
    )
    if root is None or root.hex() != head["root_hash"]:
        raise ArchiveError(f"The archived events do not rebuild the root of tree head #{head['number']}.")
    consistency = proof["consistency"]
    if not merkle.verify_consistency(
        head["tree_size"],
        latest["tree_size"],
        bytes.fromhex(head["root_hash"]),
        bytes.fromhex(latest["root_hash"]),
        [bytes.fromhex(node) for node in consistency["path"]],
    ):
        raise ArchiveError(f"Tree head #{head['number']} is not proven a prefix of head #{latest['number']}.")
    return manifest
