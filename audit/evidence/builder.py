"""Build an evidence package: one workspace (or the organisation's own events), one period,
proven against one signed tree head.

Every file is streamed into the ZIP from querysets read with ``.iterator()`` while its SHA-256
and size are computed, so memory does not grow with the number of events or records; the
manifest, listing them all, is written and signed last. The ZIP is written to a temporary file
beside the destination and renamed only when complete: a failed build leaves nothing behind.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import tomllib
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone

from audit import merkle
from audit.canonical import format_time, parse
from audit.collectors import EvidenceFile, FileFormat, Findings, Scope, evidence_files
from audit.events import EvidenceEvent
from audit.evidence import offline_verifier as verifier
from audit.evidence.exports import csv_rows, json_array, json_text
from audit.evidence.sbom import sbom_document
from audit.evidence.summary import summary_html
from audit.models import AuditEvent, SignedTreeHead
from audit.proofs import TILE, SealedTree
from audit.services import audit_event_record, audited_transaction
from audit.signing import (
    TreeHeadStatement,
    key_id_of,
    load_signing_key,
    public_key_pem,
    verify_statement,
)
from governance.tenancy.models import Organization, Workspace

CHUNK = 2000
LINES = 1000  # lines per chunk handed to the ZIP writer
DENSE_TILE = 16  # events in scope from which a full tile's proofs are made from its levels
VERIFY_EVERY = 64  # in dense tiles, every n-th proof is also verified (the first of each tile always)
COMPRESS_LEVEL = 1  # deflate: level 6 would triple the build time at ledger scale for ~10 % less size


class EvidenceError(ValueError):
    """The package cannot be built as asked; the message says why and what to do."""


@dataclass(frozen=True)
class BuildResult:
    path: Path
    events: int
    head_number: int
    manifest_sha256: str
    findings: Findings


class _ProofTree(SealedTree):
    """``SealedTree`` with bounded caches, for proving many events in sequence order.

    Keeps the leaves of at most a few tiles (the current one and the open tail) and the roots
    of recently used subtrees, which consecutive events share: a proof then costs a handful of
    hashes instead of rehashing its tile.
    """

    MAX_TILES = 4
    MAX_ROOTS = 4096

    def __init__(self, size: int):
        super().__init__(size)
        self._roots: dict[tuple[int, int], bytes] = {}

    def _leaves_of_tile(self, tile: int) -> list[bytes]:
        if tile not in self._tile_leaves and len(self._tile_leaves) >= self.MAX_TILES:
            tail = (self.size - 1) // TILE
            for cached in [cached for cached in self._tile_leaves if cached != tail]:
                del self._tile_leaves[cached]
        return super()._leaves_of_tile(tile)

    def subtree_root(self, start: int, end: int) -> bytes:
        # Consecutive events share most of their proof's siblings: remember recent subtree roots.
        if end - start == 1:
            return super().subtree_root(start, end)
        key = (start, end)
        if key not in self._roots:
            if len(self._roots) >= self.MAX_ROOTS:
                self._roots.clear()
            self._roots[key] = super().subtree_root(start, end)
        return self._roots[key]


def _generator() -> str:
    try:
        project = tomllib.loads((Path(settings.BASE_DIR) / "pyproject.toml").read_text(encoding="utf-8"))
        version = project["project"]["version"]
    except (OSError, KeyError, ValueError):
        version = "unknown"
    return f"governance-portal {version} evidence-builder/{verifier.PACKAGE_FORMAT}"


def _head_document(head: SignedTreeHead) -> dict[str, Any]:
    return {
        "number": head.number,
        "tree_size": head.tree_size,
        "root_hash": bytes(head.root_hash).hex(),
        "issued_at": format_time(head.issued_at),
        "key_id": head.key_id,
        "signature": base64.b64encode(bytes(head.signature)).decode(),
    }


class _PackageWriter:
    """Writes entries into the ZIP, hashing each as it streams, and remembers them for the manifest."""

    def __init__(self, archive: zipfile.ZipFile, built_at: datetime):
        self.archive = archive
        self.date_time = built_at.astimezone(UTC).timetuple()[:6]
        self.files: list[dict[str, Any]] = []

    def write(self, name: str, chunks: Iterable[bytes] | bytes) -> None:
        if isinstance(chunks, bytes):
            chunks = [chunks]
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = COMPRESS_LEVEL  # ZipFile.open() takes the level from the ZipInfo only
        info.external_attr = 0o644 << 16
        digest = hashlib.sha256()
        size = 0

        def take(chunk: bytes) -> None:
            digest.update(chunk)
            handle.write(chunk)

        # Hashing, deflating and writing release the GIL: one thread does them, in order, while
        # this one makes the next chunks. At most a few chunks wait, so memory stays flat.
        with self.archive.open(info, "w", force_zip64=True) as handle, ThreadPoolExecutor(1) as worker:
            waiting: deque = deque()
            for chunk in chunks:
                size += len(chunk)
                waiting.append(worker.submit(take, chunk))
                if len(waiting) > 4:
                    waiting.popleft().result()
            while waiting:
                waiting.popleft().result()
        self.files.append({"name": name, "sha256": digest.hexdigest(), "size": size})


def _period_events(scope: Scope, tree_size: int):
    return AuditEvent.objects.filter(
        scope.in_period("occurred_at"), scope.owns(), sequence__lte=tree_size
    ).order_by("sequence")


def _check_scope(scope: Scope) -> tuple[SignedTreeHead, int]:
    """The head to prove against and the number of events; EvidenceError when the ledger is not ready."""
    head = SignedTreeHead.objects.order_by("-number").first()
    size = head.tree_size if head else 0
    # One pass over the scope answers every question (each was a scan of its own at scale). The
    # head is read first and the events counted are those the writers read (sealed, under this
    # head): an event that a slow transaction commits during the build is not half-included.
    found = AuditEvent.objects.filter(scope.in_period("occurred_at"), scope.owns()).aggregate(
        total=Count("id"),
        unsealed=Count("id", filter=Q(sequence__isnull=True)),
        last=Max("sequence"),
        covered=Count("id", filter=Q(sequence__lte=size)),
    )
    if not found["total"]:
        what = (
            f"the organisation's own events of {scope.organization.slug!r}"
            if scope.is_organization
            else f"workspace {scope.workspace.slug!r}"
        )
        raise EvidenceError(
            f"No ledger events for {what} between {format_time(scope.start)} "
            f"and {format_time(scope.end)}: there is nothing to prove. Choose another period."
        )
    if found["unsealed"]:
        raise EvidenceError(
            f"{found['unsealed']} ledger event(s) in scope are not sealed yet. Run `python manage.py audit_seal` "
            "(or wait for the sealer) and build again."
        )
    if head is None or size < found["last"]:
        raise EvidenceError(
            f"Sealed event {found['last']} is not yet covered by a signed tree head. Run "
            "`python manage.py audit_seal` (it signs a head) and build again."
        )
    public_key = load_signing_key().public_key()
    statement = TreeHeadStatement(
        number=head.number,
        tree_size=head.tree_size,
        root_hash=bytes(head.root_hash),
        issued_at=head.issued_at,
        key_id=head.key_id,
    )
    if head.key_id != key_id_of(public_key) or not verify_statement(
        statement, bytes(head.signature), public_key
    ):
        raise EvidenceError(
            f"Signed tree head #{head.number} does not verify with the configured ledger key; run "
            "`python manage.py audit_verify` before building evidence."
        )
    return head, found["covered"]


class _Written:
    """The sequence and leaf hash of each event written, in order, spooled to a temporary file.

    The proofs are then made for exactly these events without reading the scope a second time,
    and each tree leaf they use must be the hash of the bytes written. 40 bytes per event on
    disk, a few hundred KB in memory.
    """

    RECORD = 40
    BLOCK = 4096  # records per read and write

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.count = 0
        self._pending: list[bytes] = []

    def add(self, sequence: int, leaf: bytes) -> None:
        self._pending.append(sequence.to_bytes(8, "big") + leaf)
        self.count += 1
        if len(self._pending) >= self.BLOCK:
            self.file.write(b"".join(self._pending))
            self._pending = []

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        self.file.write(b"".join(self._pending))
        self._pending = []
        self.file.seek(0)
        while block := self.file.read(self.RECORD * self.BLOCK):
            for at in range(0, len(block), self.RECORD):
                yield int.from_bytes(block[at : at + 8], "big"), block[at + 8 : at + self.RECORD]


def _event_lines(scope: Scope, tree_size: int, expected: int, written: _Written) -> Iterator[bytes]:
    """events.jsonl in chunks of LINES lines, each line exactly ``jsonl_line``'s bytes for
    ``{"canonical": ..., "sequence": ...}`` (without its per-line overhead; a test holds them equal)."""
    workspace = None if scope.is_organization else scope.workspace.pk
    organization = scope.organization.pk
    # Canonical bytes are RFC 8785: keys sorted, so the top-level "workspace_id" is the last
    # member. A record ending so names this workspace; any other is parsed (defence in depth:
    # the record, not only the column, must name the workspace). The organisation's own events
    # (few: sign-ins, accounts) are all parsed, for their organisation too.
    ending = b',"workspace_id":%d}' % workspace if workspace is not None else None
    rows = _period_events(scope, tree_size).values_list("sequence", "canonical").iterator(chunk_size=CHUNK)
    sha256 = hashlib.sha256
    lines: list[str] = []
    for sequence, canonical in rows:
        data = bytes(canonical)
        if ending is None:
            document = parse(data)
            if document.get("workspace_id") is not None or document.get("organization_id") != organization:
                raise EvidenceError(f"Event {sequence}'s record names another scope; run `audit_verify`.")
        elif not data.endswith(ending) and parse(data).get("workspace_id") != workspace:
            raise EvidenceError(f"Event {sequence}'s record names another workspace; run `audit_verify`.")
        written.add(sequence, sha256(b"\x00" + data).digest())
        # A JSON string that decodes to exactly these bytes, control characters and DEL escaped.
        text = encode_basestring_ascii(data.decode("utf-8")).replace("\x7f", "\\u007f")
        lines.append(f'{{"canonical":{text},"sequence":{sequence}}}\n')
        if len(lines) >= LINES:
            yield "".join(lines).encode("ascii")
            lines = []
    if lines:
        yield "".join(lines).encode("ascii")
    if written.count != expected:
        raise EvidenceError(
            f"The events in scope changed during the build ({expected} → {written.count}); build again."
        )


def _proof_line(sequence: int, leaf: str, path: str, tree_size: int) -> str:
    """``jsonl_line`` of a proof (keys sorted), from hex strings; ``path`` is the quoted, comma-joined list."""
    return (
        f'{{"leaf_hash":"{leaf}","leaf_index":{sequence - 1},"path":[{path}],'
        f'"sequence":{sequence},"tree_size":{tree_size}}}\n'
    )


def _tile_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the perfect subtree over one full tile, leaves first, root last."""
    sha256 = hashlib.sha256
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([sha256(b"\x01" + below[i] + below[i + 1]).digest() for i in range(0, len(below), 2)])
    return levels


def _tile_paths(levels: list[list[bytes]], upper: list[bytes]) -> list[str]:
    """The proof path of each leaf of a full tile as JSON array items (quoted hex, comma-joined).

    Built from the root down: the leaves below one node share the rest of its path, so each
    path is its sibling plus its parent's path, one string concatenation per node.
    """
    above = ["".join(f',"{node.hex()}"' for node in upper)]
    for level in reversed(levels[:-1]):
        quoted = [f',"{node.hex()}"' for node in level]
        above = [quoted[at ^ 1] + above[at >> 1] for at in range(len(level))]
    return [path[1:] for path in above]


def _proof_lines(head: SignedTreeHead, written: _Written) -> Iterator[bytes]:
    """proofs.jsonl, tile by tile, for the events written and in their order.

    A full tile is a perfect subtree of the tree, so the proof of each of its leaves is its path
    inside the tile (sibling nodes, computed once per tile) followed by the tile's own path to the
    root (the same for every leaf of the tile). That path comes from ``_ProofTree`` for the
    tile's first event, whose whole proof is compared with ours and verified against the signed
    root; so is every VERIFY_EVERY-th proof. Every leaf used must be the hash of the event's bytes
    as written. Tiles with few events in scope and the open last tile are proved event by event,
    each proof verified.
    """
    size, root = head.tree_size, bytes(head.root_hash)
    tree = _ProofTree(size)
    depth = TILE.bit_length() - 1
    lines: list[str] = []
    count = 0
    for tile, group in groupby(written, key=lambda item: (item[0] - 1) // TILE):
        group = list(group)
        base = tile * TILE
        leaves = tree._leaves_of_tile(tile)
        dense = (tile + 1) * TILE <= size and len(group) >= DENSE_TILE
        if dense:
            first = tree.inclusion_proof(group[0][0])
            paths = _tile_paths(_tile_levels(leaves), first[depth:])
        for position, (sequence, leaf) in enumerate(group):
            index = sequence - 1
            if leaves[index - base] != leaf:
                raise EvidenceError(
                    f"The sealed tree's leaf for event {sequence} is not the hash of its bytes: the ledger is "
                    "damaged. Run `python manage.py audit_verify`."
                )
            if dense:
                path_text = paths[index - base]
                check = position == 0 or count % VERIFY_EVERY == 0
                path = [bytes.fromhex(node) for node in path_text[1:-1].split('","')] if check else None
                if position == 0 and path != first:
                    raise EvidenceError(
                        f"The tile proof of event {sequence} differs from the reference proof."
                    )
            else:
                path = tree.inclusion_proof(sequence)
                path_text = ",".join(f'"{node.hex()}"' for node in path)
            if path is not None and not merkle.verify_inclusion(leaf, index, size, path, root):
                raise EvidenceError(
                    f"The inclusion proof of event {sequence} does not reach signed tree head #{head.number}: "
                    "the ledger is damaged. Run `python manage.py audit_verify`."
                )
            lines.append(_proof_line(sequence, leaf.hex(), path_text, size))
            count += 1
            if len(lines) >= LINES:
                yield "".join(lines).encode("ascii")
                lines = []
    if lines:
        yield "".join(lines).encode("ascii")


Progress = Callable[[str, int, int], None]


def _reported(
    chunks: Iterable[bytes], progress: Progress, phase: str, offset: int, total: int
) -> Iterator[bytes]:
    """Pass ``chunks`` of lines through, telling ``progress`` after each how far the build is."""
    done = offset
    for chunk in chunks:
        done += chunk.count(b"\n")
        progress(phase, done, total)
        yield chunk


def evidence_package_build(
    *,
    actor,
    workspace: Workspace | None,
    start: datetime,
    end: datetime,
    out: Path,
    framework: str = "",
    progress: Progress | None = None,
    organization: Organization | None = None,
) -> BuildResult:
    """Write the evidence package of ``workspace`` for ``[start, end)`` to ``out``; record that it was built.

    With ``workspace`` None and an ``organization``, the package holds the organisation's own
    events (no workspace: sign-ins, MFA, SSO, SCIM, accounts and organisation-wide roles) and the
    files registered for organisation packages.

    ``actor`` is the person it is built for (None when run by an operator from the command
    line); permission to order evidence is checked by the caller. ``framework`` (a name such as
    "SOC 2") is recorded in the manifest's scope; ``progress(phase, done, total)`` is called as
    the events and proofs are written (units: one per event and proof, one for the rest).
    """
    now = timezone.now()
    scope = _scope_of(workspace, organization, start, end, now)
    head, expected = _check_scope(scope)
    out = Path(out)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    key = load_signing_key()
    findings = Findings()
    findings.count("ledger events", expected)
    report = progress or (lambda phase, done, total: None)
    renamed = False
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            writer = _PackageWriter(archive, now)
            _write_ledger(writer, scope, head, expected, report)
            head_document = _head_document(head)
            writer.write(verifier.TREE_HEAD, (json_text(head_document, indent=2) + "\n").encode())
            writer.write(verifier.PUBLIC_KEY, public_key_pem(key.public_key()).encode())
            _write_records(writer, scope, findings)
            manifest_bytes = _write_summary_and_manifest(
                writer, key, scope, head_document, findings, requested_end=end, framework=framework
            )
        manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
        with audited_transaction():
            audit_event_record(
                action=EvidenceEvent.EVIDENCE_PACKAGE_BUILT,
                actor=actor,
                target=scope.organization if scope.is_organization else workspace,
                organization_id=scope.organization.pk,
                workspace_id=None if scope.is_organization else workspace.pk,
                data={
                    "scope": "organization" if scope.is_organization else "workspace",
                    "start": format_time(scope.start),
                    "end": format_time(scope.end),
                    "events": expected,
                    "tree_head": head.number,
                    "manifest_sha256": manifest_sha256,
                },
            )
            os.replace(partial, out)
            renamed = True
    except BaseException:
        partial.unlink(missing_ok=True)
        if renamed:  # the record did not commit: the package must not exist without it
            out.unlink(missing_ok=True)
        raise
    return BuildResult(
        path=out, events=expected, head_number=head.number, manifest_sha256=manifest_sha256, findings=findings
    )


def _scope_of(
    workspace: Workspace | None,
    organization: Organization | None,
    start: datetime,
    end: datetime,
    now: datetime,
) -> Scope:
    """The package's scope, or ``EvidenceError`` naming what is wrong with it or the period."""
    if workspace is None and organization is None:
        raise EvidenceError("Name the workspace, or the organisation, the package is for.")
    if workspace is not None and organization is not None and workspace.organization_id != organization.pk:
        raise EvidenceError(f"Workspace {workspace.slug!r} is not one of organisation {organization.slug!r}.")
    if start.tzinfo is None or end.tzinfo is None:
        raise EvidenceError("The period must be given in timezone-aware times.")
    if end <= start:
        raise EvidenceError(
            f"The period is inverted or empty: it ends ({format_time(end)}) before it starts "
            f"({format_time(start)})."
        )
    if start >= now:
        raise EvidenceError(f"The period starts in the future ({format_time(start)}).")
    return Scope(
        workspace=workspace,
        start=start,
        end=min(end, now),
        built_at=now,
        organization=organization or workspace.organization,
    )


def _write_ledger(
    writer: _PackageWriter, scope: Scope, head: SignedTreeHead, expected: int, report: Progress
) -> None:
    """The period's events, then an inclusion proof of each, reporting progress as lines go out."""
    total = 2 * expected + 1
    with tempfile.TemporaryFile() as spool:
        written = _Written(spool)
        report("events", 0, total)
        events = _event_lines(scope, head.tree_size, expected, written)
        writer.write(verifier.EVENTS, _reported(events, report, "events", 0, total))
        report("proofs", expected, total)
        proofs = _proof_lines(head, written)
        writer.write(verifier.PROOFS, _reported(proofs, report, "proofs", expected, total))
    report("records", 2 * expected, total)


def _write_records(writer: _PackageWriter, scope: Scope, findings: Findings) -> None:
    """The files the apps registered (approvals, memberships, service accounts, …), in order."""
    for evidence_file in evidence_files(scope):
        writer.write(evidence_file.name, _file_content(evidence_file, scope, findings))


def _file_content(evidence_file: EvidenceFile, scope: Scope, findings: Findings) -> Iterable[bytes] | bytes:
    rows = evidence_file.rows(scope, findings)
    if evidence_file.file_format is FileFormat.JSON_ARRAY:
        return json_array(rows)
    if evidence_file.file_format is FileFormat.CSV:
        return csv_rows(evidence_file.header, rows)
    return (json_text(rows, indent=2) + "\n").encode()


def _write_summary_and_manifest(
    writer: _PackageWriter,
    key,
    scope: Scope,
    head_document: dict[str, Any],
    findings: Findings,
    *,
    requested_end: datetime,
    framework: str,
) -> bytes:
    """The SBOM, the verifier, the summaries, then the signed manifest of every file; returns the
    manifest's bytes."""
    generator = _generator()
    key_id = key_id_of(key.public_key())
    sbom, sbom_source = sbom_document()
    writer.write("sbom.cdx.json", sbom)
    writer.write("verify.py", Path(verifier.__file__).read_bytes())
    summary = {
        "scope": scope,
        "head": head_document,
        "key_id": key_id,
        "findings": findings,
        "generator": generator,
        "sbom_source": sbom_source,
    }
    writer.write("summary.html", summary_html(**summary))
    # Imported here, not at the top: the PDF library is heavy, and every management command and
    # web process imports this module (through the control panel) without building a package.
    from audit.evidence.summary_pdf import summary_pdf

    writer.write("summary.pdf", summary_pdf(**summary))
    workspace, organization = scope.workspace, scope.organization
    manifest = {
        "format": verifier.PACKAGE_FORMAT,
        "generator": generator,
        "built_at": format_time(scope.built_at),
        "scope": {
            "organization": {"id": organization.pk, "slug": organization.slug, "name": organization.name},
            # None: the organisation's own events (no workspace), as their own proven package.
            "workspace_id": None if workspace is None else workspace.pk,
            "workspace": None if workspace is None else {"slug": workspace.slug, "name": workspace.name},
            "start": format_time(scope.start),
            "end": format_time(scope.end),
            "requested_end": format_time(requested_end),
            **({"framework": framework} if framework else {}),
        },
        "tree_head": head_document,
        "key_id": key_id,
        "counts": {
            "events": findings.counts["ledger events"],
            **{k: v for k, v in findings.counts.items() if k != "ledger events"},
        },
        "exceptions": {kind: finding.count for kind, finding in findings.exceptions.items()},
        "sbom_source": sbom_source,
        "files": writer.files,
    }
    manifest_bytes = (json_text(manifest, indent=2) + "\n").encode()
    writer.write(verifier.MANIFEST, manifest_bytes)
    signature = key.sign(verifier.MANIFEST_CONTEXT + manifest_bytes)
    writer.write(verifier.MANIFEST_SIGNATURE, base64.b64encode(signature) + b"\n")
    return manifest_bytes
