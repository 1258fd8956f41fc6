#!/usr/bin/env python3
"""Verify an evidence package or a ledger archive of the governance portal, offline.

Needs only Python 3.11+ and the ``cryptography`` package; it imports nothing of the portal, so an
auditor can read it in one sitting and run it anywhere::

    python verify.py package.zip --public-key ledger.pem     # or --key-id HEX
    python verify.py ledger-archive-UID.zip --public-key ledger.pem

For an evidence package it checks the manifest's Ed25519 signature, every file's size and
SHA-256, the signed tree head, and, for every event, the RFC 9162 inclusion proof from its
canonical bytes up to the signed root.

A ledger archive (the events a retention run pruned; its manifest says ``"kind":
"ledger-archive"``) is checked the same way up to the events; then one batch proof must rebuild
the root of the tree head the run pruned under from the events' leaf hashes, and an RFC 9162
consistency proof must show that head to be a prefix of the latest head the archive carries.

Exit status: 0 when everything holds, 1 when something does not (each failure is printed with
the file, line and sequence number), 2 when the file cannot be read at all.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
import zipfile
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PACKAGE_FORMAT = 1
MANIFEST = "manifest.json"
MANIFEST_SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public-key.pem"
TREE_HEAD = "tree-head.json"
EVENTS = "events.jsonl"
PROOFS = "proofs.jsonl"
REQUIRED = (MANIFEST, MANIFEST_SIGNATURE, PUBLIC_KEY, TREE_HEAD, EVENTS, PROOFS)
# Signed bytes are this prefix and the manifest: a manifest signature can never pass for a
# signature over a tree-head statement made with the same key, nor the other way round.
MANIFEST_CONTEXT = b"governance-portal/evidence-manifest/v1\n"
TREE_HEAD_STATEMENT_VERSION = 1
MAX_LINE = 1 << 20  # an event's canonical record is at most 64 KiB; its escaped line far less than this

# A ledger archive (audit/retention/archive.py writes it): the same manifest, signature, key and
# events files, its own signing context, the latest head and one proof file instead of proofs.jsonl.
ARCHIVE_KIND = "ledger-archive"
ARCHIVE_FORMAT = 1
ARCHIVE_MANIFEST_CONTEXT = b"governance-portal/ledger-archive-manifest/v1\n"
LATEST_HEAD = "latest-head.json"
PROOF = "proof.json"
ARCHIVE_REQUIRED = (MANIFEST, MANIFEST_SIGNATURE, PUBLIC_KEY, TREE_HEAD, LATEST_HEAD, EVENTS, PROOF)
EMPTY_ROOT = hashlib.sha256(b"").digest()


class PackageError(Exception):
    """The package cannot be read at all (not a ZIP, no manifest, …)."""


@dataclass
class Report:
    """What the verification found: ``problems`` (each a failure) and ``notes`` (information)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    events: int = 0
    key_id: str = ""
    key_trusted: bool = False
    proven: str = ""  # what an archive's proofs showed, for the closing line

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, message: str) -> None:
        self.problems.append(message)


# --- RFC 9162 (the same algorithms as audit/merkle.py, repeated here to stay stand-alone) ----------


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data): the hash of a leaf entry."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class InclusionChecker:
    """RFC 9162 §2.1.3.2 inclusion checks for many proofs against one tree, reusing what it
    already verified.

    The algorithm's next steps depend only on its state (fn, sn, computed hash) and the proof
    nodes still to use. When that state, at some step, is the one the last *accepted* proof had
    at the same step, and the remaining nodes are the same, the rest of the computation is the
    same and ends at the root. Proofs of neighbouring events share most of their path, so most
    hashes are skipped; a proof that differs anywhere is computed to the end. Rejections are not
    remembered.
    """

    def __init__(self, size: int, root: bytes):
        self.size, self.root = size, root
        self._states: list[tuple[int, int, bytes]] = []
        self._proof: list[bytes] = []

    def check(self, leaf: bytes, index: int, proof: list[bytes]) -> bool:
        size = self.size
        if not 0 <= index < size or any(len(node) != 32 for node in proof):
            return False
        fn, sn = index, size - 1
        computed = leaf
        states = []
        known, known_proof = self._states, self._proof
        for step, sibling in enumerate(proof):
            state = (fn, sn, computed)
            if step < len(known) and known[step] == state and proof[step:] == known_proof[step:]:
                return True  # from here on, the accepted proof's computation, which reached the root
            states.append(state)
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                computed = node_hash(sibling, computed)
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
            else:
                computed = node_hash(computed, sibling)
            fn >>= 1
            sn >>= 1
        if sn == 0 and computed == self.root:
            self._states, self._proof = states, list(proof)
            return True
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: whether ``proof`` shows the tree (old_size, old_root) to be a prefix of
    (new_size, new_root). Equal sizes need equal roots and no proof."""
    if any(len(node) != 32 for node in proof) or not 0 <= old_size <= new_size:
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT and (new_size > 0 or new_root == EMPTY_ROOT)
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    if old_size & (old_size - 1) == 0:  # the old tree is a whole subtree: its root is not sent
        proof = [old_root, *proof]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_computed = new_computed = proof[0]
    for node in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old_computed = node_hash(node, old_computed)
            new_computed = node_hash(node, new_computed)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            new_computed = node_hash(new_computed, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and old_computed == old_root and new_computed == new_root


def _largest_power_of_two_below(n: int) -> int:
    """RFC 9162's k: the size of the left subtree of a tree of n >= 2 leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_batch(sequences: array, size: int, leaves, proof: list[bytes]) -> bytes | None:
    """The root of the tree of ``size`` leaves rebuilt from the leaf hashes of the events at
    ``sequences`` (increasing; ``leaves`` yields their hashes in the same order) and a batch proof:
    the roots of the largest subtrees holding none of those events, left to right. None when the
    leaves or the proof run out early or are left over (a proof of another shape).

    The walk visits each given leaf and each proof subtree left to right, descending only into
    subtrees that hold a given event; finished subtrees of equal width pair up on a stack, so
    memory is the stack (one entry per level) besides ``sequences``.
    """
    leaves, nodes = iter(leaves), iter(proof)
    stack: list[tuple[int, bytes]] = []  # (width, hash) of finished subtrees
    pending = [(0, size)] if size else []  # half-open ranges of leaf indices, sequence = index + 1
    while pending:
        start, end = pending.pop()
        at = bisect_left(sequences, start + 1)
        holds_one = at < len(sequences) and sequences[at] <= end
        if holds_one and end - start > 1:
            split = start + _largest_power_of_two_below(end - start)
            pending += [(split, end), (start, split)]
            continue
        node = next(leaves, None) if holds_one else next(nodes, None)
        if node is None or len(node) != 32:
            return None
        stack.append((end - start, node))
        while len(stack) >= 2 and stack[-1][0] == stack[-2][0]:
            width, right = stack.pop()
            stack[-1] = (width * 2, node_hash(stack[-1][1], right))
    if next(leaves, None) is not None or next(nodes, None) is not None:
        return None
    while len(stack) > 1:  # the right edge of an unbalanced tree folds from the right
        _, right = stack.pop()
        stack[-1] = (stack[-1][0], node_hash(stack[-1][1], right))
    return stack[0][1] if stack else EMPTY_ROOT


# --- Keys and statements ----------------------------------------------------------------------


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 bytes of SHA-256 over the raw public key, in hex (the ledger's key id)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def tree_head_statement(head: dict[str, Any]) -> bytes:
    """The RFC 8785 bytes the ledger signs for a tree head.

    Its members are small integers and ASCII strings, for which sorted keys, no whitespace and
    Python's encoder give exactly the RFC 8785 form; anything else is refused.
    """
    statement = {
        "v": TREE_HEAD_STATEMENT_VERSION,
        "number": head["number"],
        "tree_size": head["tree_size"],
        "root_hash": head["root_hash"],
        "issued_at": head["issued_at"],
        "key_id": head["key_id"],
    }
    if not (_is_int(statement["number"]) and _is_int(statement["tree_size"])):
        raise ValueError("number and tree_size must be integers")
    if not all(
        isinstance(statement[k], str) and statement[k].isascii() for k in ("root_hash", "issued_at", "key_id")
    ):
        raise ValueError("root_hash, issued_at and key_id must be ASCII strings")
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def _signature_ok(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not a base64 string")
    return base64.b64decode(text.strip(), validate=True)


# --- The package ------------------------------------------------------------------------------


def _read(archive: zipfile.ZipFile, name: str, limit: int = 16 << 20) -> bytes:
    with archive.open(name) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise PackageError(f"{name} is larger than {limit} bytes")
    return data


def _file_digest(archive: zipfile.ZipFile, name: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with archive.open(name) as handle:
        while chunk := handle.read(1 << 16):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _check_key(
    report: Report,
    public_key: Ed25519PublicKey,
    trusted_pem: bytes | None,
    key_id: str | None,
    what: str = "package",
) -> None:
    report.key_id = key_id_of(public_key)
    if trusted_pem is not None:
        try:
            trusted = load_public_key(trusted_pem)
        except ValueError as error:
            raise PackageError(f"the trusted public key cannot be read: {error}") from None
        if key_id_of(trusted) != report.key_id:
            report.fail(
                f"{PUBLIC_KEY}: the {what}'s key (key id {report.key_id}) is not the trusted key "
                f"(key id {key_id_of(trusted)})"
            )
        else:
            report.key_trusted = True
    if key_id is not None:
        expected = key_id.strip().lower()
        if expected != report.key_id:
            report.fail(f"{PUBLIC_KEY}: key id {report.key_id} is not the expected key id {expected}")
        else:
            report.key_trusted = True
    if trusted_pem is None and key_id is None:
        article = "an" if what[0] in "aeiou" else "a"
        report.notes.append(
            f"WARNING: the public key (key id {report.key_id}) was only checked against itself; anyone "
            f"can make {article} {what} that passes this way. Pass --public-key or --key-id with the "
            "ledger key the portal publishes."
        )


def _check_files(
    report: Report, archive: zipfile.ZipFile, manifest: dict[str, Any], what: str = "package"
) -> set[str]:
    """Sizes and hashes of the listed files; returns the names that match the manifest."""
    names = [info.filename for info in archive.infolist()]
    for name in sorted({n for n in names if names.count(n) > 1}):
        report.fail(f"{name}: the ZIP holds this name more than once")
    listed = manifest.get("files")
    if not isinstance(listed, list):
        report.fail(f"{MANIFEST}: 'files' is missing")
        return set()
    good = set()
    seen = set()
    for entry in listed:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            report.fail(f"{MANIFEST}: a file entry has no name")
            continue
        seen.add(name)
        if name not in names:
            report.fail(f"{name}: listed in the manifest but missing from the {what}")
            continue
        size, digest = _file_digest(archive, name)
        if size != entry.get("size"):
            report.fail(f"{name}: size {size} differs from the manifest's {entry.get('size')}")
        if digest != entry.get("sha256"):
            report.fail(f"{name}: SHA-256 {digest} differs from the manifest's {entry.get('sha256')}")
        else:
            good.add(name)
    for name in sorted(set(names) - seen - {MANIFEST, MANIFEST_SIGNATURE}):
        report.fail(f"{name}: in the {what} but not listed in the manifest")
    return good


def _signed_head(
    report: Report, archive: zipfile.ZipFile, name: str, public_key: Ed25519PublicKey, what: str = "package"
) -> tuple[dict[str, Any], bytes] | None:
    """A signed tree head file and its root: well formed, named key id and signature checked."""
    try:
        head = json.loads(_read(archive, name))
        statement = tree_head_statement(head)
        signature = _b64(head.get("signature"))
        root = bytes.fromhex(head["root_hash"])
    except (KeyError, ValueError, TypeError, AttributeError, binascii.Error) as error:
        report.fail(f"{name}: malformed ({error})")
        return None
    if len(root) != 32:
        report.fail(f"{name}: the root hash is not 32 bytes")
        return None
    if head.get("key_id") != report.key_id:
        report.fail(f"{name}: signed by key id {head.get('key_id')}, but the {what}'s key is {report.key_id}")
    if not _signature_ok(public_key, signature, statement):
        report.fail(
            f"{name}: the signature of tree head #{head.get('number')} does not verify with the {what}'s key"
        )
    return head, root


def _check_tree_head(
    report: Report, archive: zipfile.ZipFile, manifest: dict[str, Any], public_key: Ed25519PublicKey
) -> dict[str, Any] | None:
    signed = _signed_head(report, archive, TREE_HEAD, public_key)
    if signed is None:
        return None
    head, root = signed
    claimed = manifest.get("tree_head")
    if not isinstance(claimed, dict) or any(
        claimed.get(k) != head.get(k)
        for k in ("number", "tree_size", "root_hash", "issued_at", "key_id", "signature")
    ):
        report.fail(f"{TREE_HEAD}: differs from the tree head named in the manifest")
    return {
        "size": head["tree_size"],
        "root": root,
        "number": head["number"],
        "checker": InclusionChecker(head["tree_size"], root),
    }


def _lines(archive: zipfile.ZipFile, name: str):
    """(line number, parsed object or None, error) for each line; reads one line at a time."""
    with archive.open(name) as handle:
        number = 0
        while True:
            raw = handle.readline(MAX_LINE + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE:
                yield number, None, f"longer than {MAX_LINE} bytes; not read further"
                return
            try:
                yield number, json.loads(raw), None
            except ValueError as error:
                yield number, None, f"not JSON ({error})"


def _check_event(report, scope, number, event, proof, head) -> None:
    """One event line and its proof line."""
    where = f"{EVENTS} line {number}"
    sequence = event.get("sequence") if isinstance(event, dict) else None
    canonical = event.get("canonical") if isinstance(event, dict) else None
    if not _is_int(sequence) or not isinstance(canonical, str):
        report.fail(f"{where}: malformed (needs an integer 'sequence' and a string 'canonical')")
        return
    where = f"{where} (event sequence {sequence})"
    try:
        data = canonical.encode("utf-8")
        document = json.loads(data)
    except (UnicodeEncodeError, ValueError):
        report.fail(f"{where}: the canonical record is not valid UTF-8 JSON")
        return
    if not isinstance(document, dict):
        report.fail(f"{where}: the canonical record is not an object")
        return
    if document.get("workspace_id") != scope.get("workspace_id"):
        report.fail(
            f"{where}: belongs to workspace {document.get('workspace_id')}, outside the package's "
            f"scope (workspace {scope.get('workspace_id')})"
        )
    organization = scope.get("organization") if isinstance(scope.get("organization"), dict) else {}
    if scope.get("workspace_id") is None and document.get("organization_id") != organization.get("id"):
        # A package of the organisation's own events: each must name that organisation.
        report.fail(
            f"{where}: belongs to organisation {document.get('organization_id')}, outside the package's "
            f"scope (organisation {organization.get('id')})"
        )
    occurred = document.get("occurred_at")
    if not isinstance(occurred, str) or not scope.get("start", "") <= occurred < scope.get("end", ""):
        report.fail(
            f"{where}: occurred at {occurred}, outside the period {scope.get('start')} – {scope.get('end')}"
        )
    if not isinstance(proof, dict):
        report.fail(f"{where}: {PROOFS} has no proof for it (line {number})")
        return
    if proof.get("sequence") != sequence:
        report.fail(f"{where}: {PROOFS} line {number} proves sequence {proof.get('sequence')} instead")
        return
    leaf = leaf_hash(data)
    if proof.get("leaf_hash") != leaf.hex():
        report.fail(f"{where}: the leaf hash of its canonical bytes is not the one in {PROOFS} line {number}")
    try:
        path = [bytes.fromhex(node) for node in proof.get("path", [])]
    except (TypeError, ValueError):
        report.fail(
            f"{PROOFS} line {number} (event sequence {sequence}): the path is not a list of hex hashes"
        )
        return
    if head is None:
        return
    if proof.get("leaf_index") != sequence - 1 or proof.get("tree_size") != head["size"]:
        report.fail(
            f"{PROOFS} line {number} (event sequence {sequence}): leaf index/tree size "
            f"{proof.get('leaf_index')}/{proof.get('tree_size')} should be {sequence - 1}/{head['size']}"
        )
    if not head["checker"].check(leaf, sequence - 1, path):
        report.fail(
            f"{where}: the inclusion proof does not lead to the root of signed tree head #{head['number']}"
        )


def _check_events(report: Report, archive: zipfile.ZipFile, manifest: dict[str, Any], head) -> None:
    scope = manifest.get("scope") if isinstance(manifest.get("scope"), dict) else {}
    events = _lines(archive, EVENTS)
    proofs = _lines(archive, PROOFS)
    previous = 0
    count = 0
    while True:
        event_line = next(events, None)
        proof_line = next(proofs, None)
        if event_line is None and proof_line is None:
            break
        if event_line is None:
            number, proof, _ = proof_line
            sequence = proof.get("sequence") if isinstance(proof, dict) else "?"
            report.fail(f"{PROOFS} line {number}: a proof for sequence {sequence} with no event in {EVENTS}")
            continue
        number, event, error = event_line
        count += 1
        if error:
            report.fail(f"{EVENTS} line {number}: {error}")
            continue
        proof = None
        if proof_line is not None:
            proof = proof_line[1] if not proof_line[2] else None
            if proof_line[2]:
                report.fail(f"{PROOFS} line {proof_line[0]}: {proof_line[2]}")
        sequence = event.get("sequence") if isinstance(event, dict) else None
        if _is_int(sequence):
            if sequence <= previous:
                report.fail(
                    f"{EVENTS} line {number} (event sequence {sequence}): out of order, follows sequence "
                    f"{previous} (events must be in increasing sequence order, each once)"
                )
            if head is not None and sequence > head["size"]:
                report.fail(
                    f"{EVENTS} line {number} (event sequence {sequence}): beyond the signed tree head's {head['size']} events"
                )
            previous = max(previous, sequence)
        _check_event(report, scope, number, event, proof, head)
    report.events = count
    expected = (manifest.get("counts") or {}).get("events")
    if expected != count:
        report.fail(f"{EVENTS}: holds {count} events, the manifest says {expected}")


# --- A ledger archive -------------------------------------------------------------------------


def _archive_manifest(archive: zipfile.ZipFile, names: set[str]) -> tuple[bytes, dict[str, Any]] | None:
    """The manifest's bytes and content when it declares a ledger archive; None for anything else,
    which then goes through the evidence package's checks (and their errors) unchanged."""
    if MANIFEST not in names:
        return None
    try:
        manifest_bytes = _read(archive, MANIFEST)
        manifest = json.loads(manifest_bytes)
    except (PackageError, ValueError):
        return None
    if isinstance(manifest, dict) and manifest.get("kind") == ARCHIVE_KIND:
        return manifest_bytes, manifest
    return None


def _key_of(
    report: Report,
    archive: zipfile.ZipFile,
    required,
    trusted_pem: bytes | None,
    key_id: str | None,
    *,
    what: str,
) -> Ed25519PublicKey:
    """The key the package or archive carries, checked against the key the auditor trusts."""
    names = set(archive.namelist())
    missing = [name for name in required if name not in names]
    if missing:
        raise PackageError(f"missing {', '.join(missing)}")
    try:
        public_key = load_public_key(_read(archive, PUBLIC_KEY))
    except ValueError as error:
        raise PackageError(f"{PUBLIC_KEY}: cannot be read ({error})") from None
    _check_key(report, public_key, trusted_pem, key_id, what=what)
    return public_key


def _check_manifest(
    report: Report,
    archive: zipfile.ZipFile,
    public_key: Ed25519PublicKey,
    manifest_bytes: bytes,
    manifest: dict[str, Any],
    signature: bytes,
    *,
    context: bytes,
    version: int,
    what: str,
) -> None:
    """The manifest's signature (under ``context``), format and key id, and every file it lists."""
    if not _signature_ok(public_key, signature, context + manifest_bytes):
        report.fail(
            f"{MANIFEST}: the signature in {MANIFEST_SIGNATURE} does not verify with the {what}'s key"
        )
    if manifest.get("format") != version:
        report.fail(f"{MANIFEST}: unknown {what} format {manifest.get('format')!r}")
    if manifest.get("key_id") != report.key_id:
        report.fail(
            f"{MANIFEST}: names key id {manifest.get('key_id')}, but the {what}'s key is {report.key_id}"
        )
    _check_files(report, archive, manifest, what=what)


def _verify_archive(
    report: Report,
    archive: zipfile.ZipFile,
    manifest_bytes: bytes,
    manifest: dict[str, Any],
    trusted_pem: bytes | None,
    key_id: str | None,
) -> None:
    public_key = _key_of(report, archive, ARCHIVE_REQUIRED, trusted_pem, key_id, what="archive")
    try:
        signature = _b64(_read(archive, MANIFEST_SIGNATURE).decode("ascii"))
    except (ValueError, UnicodeDecodeError, binascii.Error) as error:
        raise PackageError(f"{MANIFEST_SIGNATURE} is malformed ({error})") from None
    _check_manifest(
        report, archive, public_key, manifest_bytes, manifest, signature,
        context=ARCHIVE_MANIFEST_CONTEXT, version=ARCHIVE_FORMAT, what="archive",
    )  # fmt: skip
    heads = []
    for name, member in ((TREE_HEAD, "tree_head"), (LATEST_HEAD, "latest_head")):
        signed = _signed_head(report, archive, name, public_key, what="archive")
        if signed is not None and signed[0].get("number") != manifest.get(member):
            report.fail(
                f"{name}: tree head #{signed[0].get('number')}, but the manifest names "
                f"#{manifest.get(member)}"
            )
        heads.append(signed)
    head, latest = heads
    sequences = _archive_events(report, archive, manifest, head[0]["tree_size"] if head else None)
    if head is not None:
        _archive_proofs(report, archive, sequences, head, latest)
    if report.ok:
        report.proven = (
            f"ledger archive {manifest.get('archive')}: {report.events} events (sequences {sequences[0]} to "
            f"{sequences[-1]}) rebuild the root of signed tree head #{head[0]['number']}, which is proven "
            f"a prefix of signed tree head #{latest[0]['number']}"
        )


def _archive_events(
    report: Report, archive: zipfile.ZipFile, manifest: dict[str, Any], size: int | None
) -> array | None:
    """Each line well formed, in strictly increasing sequence order and within the head; the
    count, first and last sequence the manifest's. Returns the sequences, or None when the lines
    cannot be taken as the leaves of a batch proof."""
    sequences = array("q")
    sound = True
    count = 0
    for number, event, error in _lines(archive, EVENTS):
        count += 1
        if error:
            report.fail(f"{EVENTS} line {number}: {error}")
            sound = False
            continue
        sequence = event.get("sequence") if isinstance(event, dict) else None
        canonical = event.get("canonical") if isinstance(event, dict) else None
        if not _is_int(sequence) or not isinstance(canonical, str):
            report.fail(
                f"{EVENTS} line {number}: malformed (needs an integer 'sequence' and a string 'canonical')"
            )
            sound = False
            continue
        where = f"{EVENTS} line {number} (event sequence {sequence})"
        try:
            data = canonical.encode("utf-8")
        except UnicodeEncodeError:
            report.fail(f"{where}: the canonical record is not valid UTF-8")
            sound = False
            continue
        try:
            document = json.loads(data)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            report.fail(f"{where}: the canonical record is not a JSON object")
        previous = sequences[-1] if sequences else 0
        if sequence <= previous:
            report.fail(
                f"{where}: out of order, follows sequence {previous} (events must be in increasing "
                "sequence order, each once)"
            )
            sound = False
            continue
        if size is not None and sequence > size:
            report.fail(f"{where}: beyond the signed tree head's {size} events")
            sound = False
        sequences.append(sequence)
    report.events = count
    if not count:
        report.fail(f"{EVENTS}: holds no event")
    for member, found in (
        ("events", count),
        ("first_sequence", sequences[0] if sequences else None),
        ("last_sequence", sequences[-1] if sequences else None),
    ):
        if manifest.get(member) != found:
            report.fail(
                f"{EVENTS}: its {member.replace('_', ' ')} is {found}, the manifest says "
                f"{manifest.get(member)}"
            )
    return sequences if sound and sequences else None


def _archive_leaves(archive: zipfile.ZipFile):
    """The leaf hashes of the events, read again one line at a time (the first pass vouched for them)."""
    for _, event, _ in _lines(archive, EVENTS):
        yield leaf_hash(event["canonical"].encode("utf-8"))


def _archive_proofs(report: Report, archive: zipfile.ZipFile, sequences: array | None, first, latest) -> None:
    """The batch proof from the events to the first head's root (when the events allow a check);
    the consistency proof from it to the latest head (when that head could be read)."""
    head, root = first
    try:
        proof = json.loads(_read(archive, PROOF))
        batch = [bytes.fromhex(node) for node in proof["batch_path"]]
        consistency = proof["consistency"]
        path = [bytes.fromhex(node) for node in consistency["path"]]
        sizes = (proof["tree_size"], consistency["from_size"], consistency["to_size"])
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        report.fail(f"{PROOF}: malformed ({error})")
        return
    expected = (head["tree_size"], head["tree_size"], latest[0]["tree_size"] if latest else sizes[2])
    if sizes != expected:
        report.fail(
            f"{PROOF}: proves tree sizes {sizes[0]} (batch) and {sizes[1]} to {sizes[2]} (consistency), "
            f"the heads say {expected[0]} and {expected[1]} to {expected[2]}"
        )
    if sequences is not None:
        rebuilt = root_from_batch(sequences, head["tree_size"], _archive_leaves(archive), batch)
        if rebuilt is None:
            report.fail(
                f"{PROOF}: the batch proof ({len(batch)} hashes) does not fit the {len(sequences)} events of "
                f"{EVENTS} in a tree of {head['tree_size']}, so it does not rebuild the root of signed tree "
                f"head #{head['number']}"
            )
        elif rebuilt != root:
            report.fail(
                f"{PROOF}: the batch proof with the leaf hashes of the events in {EVENTS} does not rebuild "
                f"the root of signed tree head #{head['number']} (an event, or a proof hash, is not the "
                "ledger's)"
            )
    if latest is None:
        return
    latest, latest_root = latest
    if not verify_consistency(head["tree_size"], latest["tree_size"], root, latest_root, path):
        report.fail(
            f"{PROOF}: the consistency proof does not show signed tree head #{head['number']} (size "
            f"{head['tree_size']}) to be a prefix of signed tree head #{latest['number']} "
            f"(size {latest['tree_size']})"
        )


def verify_package(
    source: str | IO[bytes], *, public_key_pem: bytes | None = None, key_id: str | None = None
) -> Report:
    """Verify the package at ``source`` (a path or a binary file); raise PackageError if unreadable."""
    report = Report()
    try:
        archive = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as error:
        raise PackageError(f"not a readable ZIP file: {error}") from None
    with archive:
        names = set(archive.namelist())
        if (archive_manifest := _archive_manifest(archive, names)) is not None:
            _verify_archive(report, archive, *archive_manifest, public_key_pem, key_id)
            return report
        public_key = _key_of(report, archive, REQUIRED, public_key_pem, key_id, what="package")
        manifest_bytes = _read(archive, MANIFEST)
        try:
            manifest = json.loads(manifest_bytes)
            signature = _b64(_read(archive, MANIFEST_SIGNATURE).decode("ascii"))
        except (ValueError, UnicodeDecodeError, binascii.Error) as error:
            raise PackageError(f"{MANIFEST} or {MANIFEST_SIGNATURE} is malformed ({error})") from None
        if not isinstance(manifest, dict):
            raise PackageError(f"{MANIFEST} is not a JSON object")
        _check_manifest(
            report, archive, public_key, manifest_bytes, manifest, signature,
            context=MANIFEST_CONTEXT, version=PACKAGE_FORMAT, what="package",
        )  # fmt: skip
        head = _check_tree_head(report, archive, manifest, public_key)
        _check_events(report, archive, manifest, head)
    return report


def main(argv: list[str] | None = None, out: IO[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Verify an evidence package or a ledger archive of the governance portal."
    )
    parser.add_argument("package", help="the evidence package or ledger archive (ZIP)")
    parser.add_argument(
        "--public-key", help="PEM file of the ledger's public key, as the portal publishes it"
    )
    parser.add_argument("--key-id", help="the ledger key id (hex) the file must be signed with")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    try:
        pem = None
        if args.public_key:
            with open(args.public_key, "rb") as handle:
                pem = handle.read()
        report = verify_package(args.package, public_key_pem=pem, key_id=args.key_id)
    except (OSError, PackageError) as error:
        out.write(f"FAILED: cannot verify {args.package}: {error}\n")
        return 2
    for note in report.notes:
        out.write(note + "\n")
    if report.ok:
        trust = "a trusted key" if report.key_trusted else "its own key (NOT checked against a trusted key)"
        proven = report.proven or f"{report.events} events proven against the signed tree head"
        out.write(f"OK: {proven}; signed with {trust}, key id {report.key_id}.\n")
        return 0
    out.write(f"FAILED: {len(report.problems)} problem(s):\n")
    for problem in report.problems:
        out.write(f"  - {problem}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
