"""Verifying a ledger archive offline with the evidence packages' verifier: a real archive passes
with the ledger's public key alone; each kind of tampering is named; the portal's own check agrees."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import subprocess
import sys
from array import array
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import merkle
from audit.evidence import offline_verifier as verify
from audit.models import AuditEvent, SignedTreeHead
from audit.retention.archive import (
    MANIFEST_CONTEXT,
    ArchiveError,
    archive_check,
    archive_write,
    head_document,
)
from audit.retention.prune import prune_plan, prune_resume, prune_start
from audit.sealing import ledger_seal_all
from audit.signing import key_id_of, load_signing_key, public_key_pem
from tests.audit.test_evidence_verify import flip, read_all, rewrite
from tests.factories import make_events

VERIFIER = Path(verify.__file__)


@pytest.fixture
def archive(old_ledger) -> Path:
    """The archive of a real archive-then-prune run over the old ledger, written after the ledger
    moved on (so its latest head is a later one than the head it prunes under)."""
    run = prune_start(plan=prune_plan(), requested_by="test")
    make_events(5)
    ledger_seal_all()
    run = prune_resume(run=run)
    return old_ledger["dir"] / run.file_name


@pytest.fixture
def trusted_pem(tmp_path) -> Path:
    path = tmp_path / "ledger.pem"
    path.write_text(public_key_pem(load_signing_key().public_key()))
    return path


def run(path: Path, *options: str) -> tuple[int, str]:
    """The verifier's exit status and output, run as an auditor runs it: a separate, isolated Python."""
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-I", str(VERIFIER), str(path), *options], capture_output=True, text=True,
        check=False, timeout=60,
    )  # fmt: skip
    assert not result.stderr, result.stderr
    return result.returncode, result.stdout


def resign(files: dict[str, bytes], key: Ed25519PrivateKey, **manifest_changes) -> None:
    """Fix every size and hash in the manifest, apply ``manifest_changes``, and sign it with ``key``
    (an attacker's key, with its public key put in the archive; or the ledger's, to reach the proofs)."""
    manifest = json.loads(files["manifest.json"])
    files["public-key.pem"] = public_key_pem(key.public_key()).encode()
    manifest["key_id"] = key_id_of(key.public_key())
    manifest.update(manifest_changes)
    for entry in manifest["files"]:
        entry["sha256"] = hashlib.sha256(files[entry["name"]]).hexdigest()
        entry["size"] = len(files[entry["name"]])
    files["manifest.json"] = json.dumps(manifest, sort_keys=True, indent=2).encode() + b"\n"
    files["manifest.sig"] = base64.b64encode(key.sign(MANIFEST_CONTEXT + files["manifest.json"])) + b"\n"


def events_of(files: dict[str, bytes]) -> list[dict]:
    return [json.loads(line) for line in files["events.jsonl"].splitlines()]


def with_events(files: dict[str, bytes], events: list[dict]) -> None:
    files["events.jsonl"] = b"".join(
        json.dumps(event, sort_keys=True, separators=(",", ":")).encode() + b"\n" for event in events
    )


def change_canonical(files: dict[str, bytes], line: int = 0) -> None:
    """Rewrite one archived event's action."""
    events = events_of(files)
    document = json.loads(events[line]["canonical"])
    document["action"] = "workspace.deleted"
    events[line]["canonical"] = json.dumps(document, sort_keys=True, separators=(",", ":"))
    with_events(files, events)


def problems(out: str) -> list[str]:
    return [line[4:] for line in out.splitlines() if line.startswith("  - ")]


# --- A genuine archive ----------------------------------------------------------------------------


def test_a_real_archive_verifies_with_the_ledgers_public_key(archive, trusted_pem):
    """GIVEN the archive of a prune WHEN the stand-alone verifier runs on it with the published
    key (or key id) THEN it exits 0 and says what the proofs showed."""
    manifest = json.loads(read_all(archive)["manifest.json"])
    status, out = run(archive, "--public-key", str(trusted_pem))
    assert status == 0, out
    assert out == (
        f"OK: ledger archive {manifest['archive']}: 16 events (sequences {manifest['first_sequence']} "
        f"to {manifest['last_sequence']}) rebuild the root of signed tree head #{manifest['tree_head']}, "
        f"which is proven a prefix of signed tree head #{manifest['latest_head']}; signed with a trusted "
        f"key, key id {manifest['key_id']}.\n"
    )
    status, out = run(archive, "--key-id", manifest["key_id"])
    assert status == 0, out
    status, out = run(archive)
    assert status == 0
    assert f"WARNING: the public key (key id {manifest['key_id']}) was only checked against itself" in out
    assert "anyone can make an archive that passes this way" in out
    assert "NOT checked against a trusted key" in out


def test_the_archives_proofs_are_not_trivial(archive):
    """The tampering below means something only if the archive proves a real batch of scattered
    events and a real step from its head to a later one."""
    files = read_all(archive)
    proof = json.loads(files["proof.json"])
    manifest = json.loads(files["manifest.json"])
    assert proof["batch_path"]
    assert proof["consistency"]["path"]
    assert manifest["last_sequence"] - manifest["first_sequence"] + 1 > manifest["events"]


# --- Tampering --------------------------------------------------------------------------------------


def test_a_changed_event_resigned_with_another_key_is_a_key_mismatch(archive, tmp_path, trusted_pem):
    intruder = Ed25519PrivateKey.generate()
    intruder_id, real_id = key_id_of(intruder.public_key()), key_id_of(load_signing_key().public_key())

    def change(files):
        change_canonical(files)
        resign(files, intruder)

    forged = rewrite(archive, tmp_path / "forged.zip", change)
    status, out = run(forged, "--public-key", str(trusted_pem))
    assert status == 1
    assert (
        f"public-key.pem: the archive's key (key id {intruder_id}) is not the trusted key (key id {real_id})"
        in problems(out)
    )
    # The heads were signed by the ledger, not by the intruder: neither passes for theirs.
    assert f"tree-head.json: signed by key id {real_id}, but the archive's key is {intruder_id}" in out
    assert "latest-head.json: signed by key id" in out
    status, out = run(forged, "--key-id", real_id)
    assert status == 1
    assert f"key id {intruder_id} is not the expected key id {real_id}" in out


def test_a_changed_event_without_resigning_is_a_digest_mismatch(archive, tmp_path, trusted_pem):
    status, out = run(
        rewrite(archive, tmp_path / "t.zip", lambda files: change_canonical(files, line=3)),
        "--public-key", str(trusted_pem),
    )  # fmt: skip
    assert status == 1
    mismatch = re.compile(r"events.jsonl: SHA-256 [0-9a-f]{64} differs from the manifest's [0-9a-f]{64}")
    assert any(mismatch.fullmatch(problem) for problem in problems(out)), out
    assert "does not rebuild the root of signed tree head" in out


def test_a_changed_event_under_a_genuine_signature_does_not_rebuild_the_root(archive, tmp_path, trusted_pem):
    """GIVEN a manifest signed with the ledger's key over a changed event (the signature is not what
    protects the events) THEN the batch proof alone catches it."""

    def change(files):
        change_canonical(files, line=5)
        resign(files, load_signing_key())

    status, out = run(rewrite(archive, tmp_path / "t.zip", change), "--public-key", str(trusted_pem))
    assert status == 1
    head = json.loads(read_all(archive)["tree-head.json"])["number"]
    assert problems(out) == [
        "proof.json: the batch proof with the leaf hashes of the events in events.jsonl does not rebuild "
        f"the root of signed tree head #{head} (an event, or a proof hash, is not the ledger's)"
    ]


@pytest.mark.parametrize("line", [0, 7, -1])
def test_a_removed_event_under_a_genuine_signature_does_not_rebuild_the_root(
    archive, tmp_path, trusted_pem, line
):
    def change(files):
        events = events_of(files)
        del events[line]
        with_events(files, events)
        resign(
            files, load_signing_key(), events=len(events), first_sequence=events[0]["sequence"],
            last_sequence=events[-1]["sequence"],
        )  # fmt: skip

    status, out = run(rewrite(archive, tmp_path / "t.zip", change), "--public-key", str(trusted_pem))
    assert status == 1
    [problem] = problems(out)
    assert problem.startswith("proof.json: the batch proof ")
    assert "does not rebuild the root of signed tree head #" in problem


def test_events_out_of_order_are_named_by_line_and_sequence(archive, tmp_path, trusted_pem):
    swapped = []

    def change(files):
        events = events_of(files)
        events[2], events[3] = events[3], events[2]
        swapped.extend(event["sequence"] for event in events[2:4])
        with_events(files, events)
        resign(files, load_signing_key())

    status, out = run(rewrite(archive, tmp_path / "t.zip", change), "--public-key", str(trusted_pem))
    assert status == 1
    assert problems(out) == [
        f"events.jsonl line 4 (event sequence {swapped[1]}): out of order, follows sequence {swapped[0]} "
        "(events must be in increasing sequence order, each once)"
    ]


def test_a_changed_proof_hash_does_not_rebuild_the_root(archive, tmp_path, trusted_pem):
    def change(files):
        proof = json.loads(files["proof.json"])
        proof["batch_path"][0] = flip(proof["batch_path"][0].encode(), 0).decode()
        files["proof.json"] = json.dumps(proof, sort_keys=True).encode()
        resign(files, load_signing_key())

    status, out = run(rewrite(archive, tmp_path / "t.zip", change), "--public-key", str(trusted_pem))
    assert status == 1
    [problem] = problems(out)
    assert (
        "proof.json: the batch proof with the leaf hashes of the events in events.jsonl does not rebuild"
        in problem
    )


def test_a_changed_proof_hash_without_resigning_is_a_digest_mismatch(archive, tmp_path, trusted_pem):
    def change(files):
        files["proof.json"] = flip(files["proof.json"])

    status, out = run(rewrite(archive, tmp_path / "t.zip", change), "--public-key", str(trusted_pem))
    assert status == 1
    assert "proof.json: SHA-256 " in out


@pytest.mark.parametrize("how", ["flipped", "dropped", "extra"])
def test_a_wrong_consistency_proof_is_caught(archive, tmp_path, trusted_pem, how):
    def change(files):
        proof = json.loads(files["proof.json"])
        path = proof["consistency"]["path"]
        if how == "flipped":
            path[-1] = flip(path[-1].encode(), 0).decode()
        elif how == "dropped":
            path.pop()
        else:
            path.append(proof["batch_path"][0])
        files["proof.json"] = json.dumps(proof, sort_keys=True).encode()
        resign(files, load_signing_key())

    status, out = run(rewrite(archive, tmp_path / "t.zip", change), "--public-key", str(trusted_pem))
    assert status == 1
    files = read_all(archive)
    head, latest = json.loads(files["tree-head.json"]), json.loads(files["latest-head.json"])
    assert problems(out) == [
        f"proof.json: the consistency proof does not show signed tree head #{head['number']} (size "
        f"{head['tree_size']}) to be a prefix of signed tree head #{latest['number']} (size "
        f"{latest['tree_size']})"
    ]


@pytest.mark.parametrize("name", ["tree-head.json", "latest-head.json"])
def test_a_head_with_a_bad_signature_is_caught(archive, tmp_path, trusted_pem, name):
    def change(files):
        head = json.loads(files[name])
        signature = bytearray(base64.b64decode(head["signature"]))
        signature[0] ^= 1
        head["signature"] = base64.b64encode(bytes(signature)).decode()
        files[name] = json.dumps(head, sort_keys=True).encode()
        resign(files, load_signing_key())

    status, out = run(rewrite(archive, tmp_path / "t.zip", change), "--public-key", str(trusted_pem))
    assert status == 1
    number = json.loads(read_all(archive)[name])["number"]
    assert problems(out) == [
        f"{name}: the signature of tree head #{number} does not verify with the archive's key"
    ]


def test_a_later_head_passed_off_as_the_pruning_head_is_caught(archive, tmp_path, trusted_pem):
    """GIVEN the latest head, genuinely signed, put in place of the head the run pruned under THEN
    the manifest's head number and the batch proof both say so."""

    def change(files):
        files["tree-head.json"] = files["latest-head.json"]
        resign(files, load_signing_key())

    status, out = run(rewrite(archive, tmp_path / "t.zip", change), "--public-key", str(trusted_pem))
    assert status == 1
    assert "tree-head.json: tree head #" in out
    assert "proof.json: proves tree sizes" in out


def test_an_unsigned_manifest_change_and_an_unlisted_file_are_caught(archive, tmp_path, trusted_pem):
    def change(files):
        manifest = json.loads(files["manifest.json"])
        manifest["events"] = 15
        files["manifest.json"] = json.dumps(manifest).encode()
        files["notes.txt"] = b"planted"

    status, out = run(rewrite(archive, tmp_path / "t.zip", change), "--public-key", str(trusted_pem))
    assert status == 1
    assert "manifest.json: the signature in manifest.sig does not verify with the archive's key" in out
    assert "notes.txt: in the archive but not listed in the manifest" in out
    assert "events.jsonl: its events is 16, the manifest says 15" in out


def test_an_archive_missing_its_proof_cannot_be_verified(archive, tmp_path, trusted_pem):
    status, out = run(
        rewrite(archive, tmp_path / "t.zip", lambda files: files.pop("proof.json")),
        "--public-key",
        str(trusted_pem),
    )
    assert status == 2
    assert "FAILED: cannot verify" in out
    assert "missing proof.json" in out


# --- The portal's check and the auditor's agree -----------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=1, max_value=70).flatmap(
        lambda n: st.tuples(st.just(n), st.sets(st.integers(1, n), min_size=1), st.integers(0, n))
    ),
    st.sampled_from(["none", "leaf", "proof", "short", "long"]),
)
def test_the_verifiers_own_merkle_code_decides_as_the_ledgers(case, bend):
    """verify.py carries its own batch rebuild and consistency check (it stays one stand-alone
    file): on any tree, any set of events and any bent input they give audit.merkle's answers."""
    size, chosen, old_size = case
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(size)]
    sequences = sorted(chosen)
    proof = merkle.batch_path(
        [s - 1 for s in sequences], size, lambda a, b: merkle._subtree_root(leaves, a, b)
    )
    given_leaves = [leaves[s - 1] for s in sequences]
    consistency = merkle.consistency_proof(leaves, old_size)
    old_root, root = merkle.root_from_leaf_hashes(leaves[:old_size]), merkle.root_from_leaf_hashes(leaves)
    match bend:
        case "leaf":
            given_leaves[0] = merkle.leaf_hash(b"forged")
        case "proof" if proof:
            proof[0] = proof[0][:-1] + bytes([proof[0][-1] ^ 1])
        case "proof" if consistency:
            consistency[0] = consistency[0][:-1] + bytes([consistency[0][-1] ^ 1])
        case "short":
            proof, consistency = proof[:-1], consistency[:-1]
        case "long":
            proof, consistency = [*proof, root], [*consistency, root]
    assert verify.root_from_batch(array("q", sequences), size, given_leaves, proof) == merkle.root_from_batch(
        [s - 1 for s in sequences], size, given_leaves, proof
    )
    assert verify.verify_consistency(
        old_size, size, old_root, root, consistency
    ) == merkle.verify_consistency(old_size, size, old_root, root, consistency)
    if bend == "none":
        assert verify.root_from_batch(array("q", sequences), size, given_leaves, proof) == root
        assert verify.verify_consistency(old_size, size, old_root, root, consistency)


TAMPERINGS = ["none", "event", "drop", "proof", "consistency", "latest", "order"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=st.integers(min_value=1, max_value=40),
    later=st.integers(min_value=0, max_value=20),
    tampering=st.sampled_from(TAMPERINGS),
    seed=st.integers(min_value=0),
)
def test_the_portals_archive_check_and_the_offline_verifier_agree(
    db, tmp_path, first, later, tampering, seed
):
    """GIVEN random small ledgers, archives of random events under one head, and one random
    tampering re-signed with the ledger's key WHEN archive_check and the verifier both check the
    file THEN they accept exactly the same archives (the untouched ones)."""
    # The ledger grows from one example to the next: choices depending on its size come from a
    # seeded generator, not from Hypothesis, whose draws must not depend on outside state.
    randomly = random.Random(seed)  # noqa: S311 - test data, not secrets
    make_events(first)
    head = ledger_seal_all().head
    make_events(later)
    latest = ledger_seal_all().head or head  # no new head when nothing was added
    chosen = sorted(randomly.sample(range(1, head.tree_size + 1), randomly.randint(1, head.tree_size)))
    rows = (
        AuditEvent.objects.filter(sequence__in=chosen)
        .order_by("sequence")
        .values_list("sequence", "canonical")
    )
    key = load_signing_key()
    path = tmp_path / f"archive-{head.number}.zip"
    archive_write(
        path=path, run_uid="cross-check", head=head, latest=latest, rows=iter(rows), key=key, description={}
    )

    def change(files):
        events = events_of(files)
        proof = json.loads(files["proof.json"])
        changes = {}
        if tampering == "event":
            change_canonical(files, randomly.randrange(len(events)))
        elif tampering == "drop" and len(events) > 1:
            del events[randomly.randrange(len(events))]
            with_events(files, events)
        elif tampering == "proof" and proof["batch_path"]:
            at = randomly.randrange(len(proof["batch_path"]))
            proof["batch_path"][at] = flip(proof["batch_path"][at].encode(), 0).decode()
        elif tampering == "consistency":
            proof["consistency"]["path"].append(hashlib.sha256(b"x").hexdigest())
        elif tampering == "latest" and SignedTreeHead.objects.exclude(tree_size=latest.tree_size).exists():
            others = list(SignedTreeHead.objects.exclude(tree_size=latest.tree_size).order_by("number"))
            other = randomly.choice(others)
            files["latest-head.json"] = json.dumps(head_document(other), sort_keys=True).encode()
            changes["latest_head"] = other.number
        elif tampering == "order" and len(events) > 1:
            events[0], events[1] = events[1], events[0]
            with_events(files, events)
        else:
            return
        if tampering in ("proof", "consistency"):
            files["proof.json"] = json.dumps(proof, sort_keys=True).encode()
        events = events_of(files)
        resign(
            files, key, events=len(events), first_sequence=min(e["sequence"] for e in events),
            last_sequence=max(e["sequence"] for e in events), **changes,
        )  # fmt: skip

    checked = rewrite(path, tmp_path / f"checked-{head.number}.zip", change)
    try:
        archive_check(checked, key.public_key())
        portal_ok = True
    except ArchiveError:
        portal_ok = False
    report = verify.verify_package(str(checked), public_key_pem=public_key_pem(key.public_key()).encode())
    assert report.ok == portal_ok, (tampering, report.problems)
    if read_all(checked) == read_all(path):
        assert report.ok
