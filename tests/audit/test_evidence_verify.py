"""Verifying evidence packages offline: a clean package passes; every kind of tampering is named."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.evidence import offline_verifier as verify
from audit.models import SignedTreeHead
from audit.sealing import ledger_seal_all
from audit.signing import TreeHeadStatement, key_id_of, load_signing_key, public_key_pem
from tests.audit.test_evidence import build, populate
from tests.factories import make_events

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])


@pytest.fixture
def package(world, tmp_path) -> Path:
    populate(world)
    return build(world, tmp_path / "evidence.zip")


@pytest.fixture
def trusted_pem(tmp_path) -> Path:
    path = tmp_path / "ledger.pem"
    path.write_text(public_key_pem(load_signing_key().public_key()))
    return path


def read_all(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rewrite(source: Path, target: Path, change) -> Path:
    """Copy the package, letting ``change`` edit the {name: bytes} mapping in between."""
    files = read_all(source)
    change(files)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


def run(path: Path, *options: str) -> tuple[int, str]:
    """evidence_verify's exit status and output."""
    out = io.StringIO()
    try:
        call_command("evidence_verify", str(path), *options, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


def flip(data: bytes, at: int | None = None) -> bytes:
    """Change one hex/base64 character (so the file still parses) at or after ``at`` (default: middle)."""
    start = len(data) // 2 if at is None else at
    match = re.compile(rb"[0-9a-fA-F]").search(data, start)
    index = match.start()
    replacement = b"1" if data[index : index + 1] != b"1" else b"2"
    return data[:index] + replacement + data[index + 1 :]


def lines_of(files: dict[str, bytes], name: str) -> list[bytes]:
    return files[name].splitlines(keepends=True)


# --- A clean package ---------------------------------------------------------------------------


def test_a_clean_package_verifies_through_the_command(package, trusted_pem):
    status, out = run(package, "--public-key", str(trusted_pem))
    assert status == 0, out
    assert re.search(r"OK: \d+ events proven against the signed tree head; signed with a trusted key", out)


def test_the_extracted_verify_py_runs_stand_alone(package, tmp_path):
    """GIVEN only the package WHEN its own verify.py runs under a bare Python (Django unimportable)
    THEN it passes with the published key id."""
    script = tmp_path / "alone" / "verify.py"
    script.parent.mkdir()
    script.write_bytes(read_all(package)["verify.py"])
    key_id = key_id_of(load_signing_key().public_key())
    runner = (
        "import sys, runpy; sys.modules['django'] = None; "
        f"sys.argv = ['verify.py', {str(package)!r}, '--key-id', {key_id!r}]; "
        f"runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-I", "-c", runner], capture_output=True, text=True, cwd=script.parent, check=False,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK:" in result.stdout
    assert "a trusted key" in result.stdout
    # And plainly, as an auditor would run it: a tampered copy fails with the file named.
    tampered = rewrite(package, tmp_path / "t.zip", lambda files: files.update({"approvals.csv": b"x"}))
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(script), str(tampered), "--key-id", key_id], capture_output=True, text=True,
        check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "approvals.csv: size 1 differs from the manifest's" in result.stdout


def test_the_verifier_imports_nothing_of_the_portal():
    source = Path(verify.__file__).read_text()
    imports = re.findall(r"^(?:from|import) (\S+)", source, re.MULTILINE)
    assert not [
        name for name in imports if name.split(".")[0] in {"django", "audit", "governance", "workflows"}
    ]


def test_without_a_trusted_key_it_says_so(package):
    status, out = run(package)
    assert status == 0
    assert "was only checked against itself" in out
    assert "NOT checked against a trusted key" in out


# --- Tampering: every file kind ------------------------------------------------------------------

FILE_MESSAGES = {
    "events.jsonl": "events.jsonl: SHA-256",
    "proofs.jsonl": "proofs.jsonl: SHA-256",
    "approvals.csv": "approvals.csv: SHA-256",
    "approvals.json": "approvals.json: SHA-256",
    "memberships.csv": "memberships.csv: SHA-256",
    "role-changes.csv": "role-changes.csv: SHA-256",
    "service-accounts.csv": "service-accounts.csv: SHA-256",
    "credentials.csv": "credentials.csv: SHA-256",
    "policies.json": "policies.json: SHA-256",
    "sbom.cdx.json": "sbom.cdx.json: SHA-256",
    "summary.html": "summary.html: SHA-256",
    "summary.pdf": "summary.pdf: SHA-256",
    "verify.py": "verify.py: SHA-256",
    "tree-head.json": "tree-head.json: the signature of tree head",
    "public-key.pem": "public-key.pem",
    "manifest.json": "manifest.json: the signature in manifest.sig does not verify",
    "manifest.sig": "manifest.json: the signature in manifest.sig does not verify",
}


@pytest.mark.parametrize("name", sorted(FILE_MESSAGES))
def test_a_flipped_byte_in_any_file_is_named(package, tmp_path, name):
    def change(files):
        files[name] = flip(files[name])

    status, out = run(rewrite(package, tmp_path / "t.zip", change))
    assert status != 0
    assert FILE_MESSAGES[name] in out, out


def test_a_flipped_byte_in_an_event_names_the_event(package, tmp_path):
    def change(files):
        lines = lines_of(files, "events.jsonl")
        lines[1] = flip(lines[1], lines[1].index(b"uid"))
        files["events.jsonl"] = b"".join(lines)

    status, out = run(rewrite(package, tmp_path / "t.zip", change))
    assert status == 1
    assert re.search(r"events.jsonl line 2 \(event sequence \d+\): the leaf hash of its canonical bytes", out)
    assert re.search(r"events.jsonl line 2 \(event sequence \d+\): the inclusion proof does not lead", out)


def test_a_flipped_byte_in_a_proof_names_the_event(package, tmp_path):
    def change(files):
        lines = lines_of(files, "proofs.jsonl")
        lines[2] = flip(lines[2], lines[2].index(b'"path"'))
        files["proofs.jsonl"] = b"".join(lines)

    status, out = run(rewrite(package, tmp_path / "t.zip", change))
    assert status == 1
    assert re.search(r"events.jsonl line 3 \(event sequence \d+\): the inclusion proof does not lead", out)


# --- Tampering: events dropped, added, swapped ---------------------------------------------------------


def test_a_dropped_event_is_caught(package, tmp_path):
    def change(files):
        files["events.jsonl"] = b"".join(
            lines_of(files, "events.jsonl")[:1] + lines_of(files, "events.jsonl")[2:]
        )

    status, out = run(rewrite(package, tmp_path / "t.zip", change))
    assert status == 1
    count = re.search(r"holds (\d+) events, the manifest says (\d+)", out)
    assert int(count[1]) == int(count[2]) - 1
    assert re.search(
        r"events.jsonl line 2 \(event sequence \d+\): proofs.jsonl line 2 proves sequence \d+ instead", out
    )


def test_a_dropped_event_and_its_proof_is_caught_by_count_and_hash(package, tmp_path):
    def change(files):
        for name in ("events.jsonl", "proofs.jsonl"):
            files[name] = b"".join(lines_of(files, name)[:-1])

    status, out = run(rewrite(package, tmp_path / "t.zip", change))
    assert status == 1
    assert re.search(r"events.jsonl: holds (\d+) events, the manifest says \d+", out)
    assert "events.jsonl: SHA-256" in out
    assert "proofs.jsonl: SHA-256" in out


def test_an_added_event_of_another_workspace_with_its_real_proof_is_caught(package, world, tmp_path):
    """GIVEN a genuine event of another workspace, with a genuine proof against the same head
    WHEN it is slipped into the package THEN the verifier names it as outside the scope."""
    foreign = build(world, tmp_path / "sibling.zip", workspace="fin-us")
    theirs = read_all(foreign)
    assert json.loads(theirs["tree-head.json"]) == json.loads(read_all(package)["tree-head.json"])
    intruder = lines_of(theirs, "events.jsonl")[0]
    intruder_proof = lines_of(theirs, "proofs.jsonl")[0]
    sequence = json.loads(intruder)["sequence"]

    def change(files):
        for name, line in (("events.jsonl", intruder), ("proofs.jsonl", intruder_proof)):
            lines = lines_of(files, name)
            lines.append(line)
            lines.sort(key=lambda raw: json.loads(raw)["sequence"])
            files[name] = b"".join(lines)

    status, out = run(rewrite(package, tmp_path / "t.zip", change))
    assert status == 1
    assert re.search(
        rf"events.jsonl line \d+ \(event sequence {sequence}\): belongs to workspace {world.sibling.pk}, "
        rf"outside the package's scope \(workspace {world.ws.pk}\)",
        out,
    )
    assert "the inclusion proof does not lead" not in out  # the proof itself is genuine
    assert re.search(r"events.jsonl: holds (\d+) events, the manifest says \d+", out)


def test_two_swapped_events_are_caught(package, tmp_path):
    def change(files):
        for name in ("events.jsonl", "proofs.jsonl"):
            lines = lines_of(files, name)
            lines[1], lines[2] = lines[2], lines[1]
            files[name] = b"".join(lines)

    status, out = run(rewrite(package, tmp_path / "t.zip", change))
    assert status == 1
    assert re.search(r"events.jsonl line 3 \(event sequence \d+\): out of order, follows sequence \d+", out)


def test_swapped_event_lines_without_their_proofs_are_caught(package, tmp_path):
    def change(files):
        lines = lines_of(files, "events.jsonl")
        lines[0], lines[1] = lines[1], lines[0]
        files["events.jsonl"] = b"".join(lines)

    status, out = run(rewrite(package, tmp_path / "t.zip", change))
    assert status == 1
    assert re.search(
        r"events.jsonl line 1 \(event sequence \d+\): proofs.jsonl line 1 proves sequence \d+ instead", out
    )


# --- Tampering: the tree head and the key -----------------------------------------------------------


def test_a_forged_tree_head_is_caught(package, tmp_path):
    def change(files):
        head = json.loads(files["tree-head.json"])
        head["tree_size"] += 1
        files["tree-head.json"] = json.dumps(head).encode()

    status, out = run(rewrite(package, tmp_path / "t.zip", change))
    assert status == 1
    assert "tree-head.json: the signature of tree head" in out
    assert "tree-head.json: differs from the tree head named in the manifest" in out


def test_another_genuine_tree_head_is_caught(world, tmp_path):
    """GIVEN two genuine heads WHEN the package's head is replaced by the older one THEN the
    manifest mismatch and every proof that no longer reaches the root are named."""
    populate(world)
    old = SignedTreeHead.objects.order_by("-number").first()
    make_events(5, workspace=world.sibling)
    ledger_seal_all()
    package = build(world, tmp_path / "p.zip")
    old_document = {
        "number": old.number, "tree_size": old.tree_size, "root_hash": bytes(old.root_hash).hex(),
        "issued_at": old.issued_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "key_id": old.key_id,
        "signature": base64.b64encode(bytes(old.signature)).decode(),
    }  # fmt: skip

    def change(files):
        files["tree-head.json"] = json.dumps(old_document).encode()

    status, out = run(rewrite(package, tmp_path / "t.zip", change))
    assert status == 1
    assert "tree-head.json: the signature" not in out  # genuine, but not the one signed into the manifest
    assert "tree-head.json: differs from the tree head named in the manifest" in out
    assert re.search(r"proofs.jsonl line 1 \(event sequence \d+\): leaf index/tree size", out)


def test_a_replaced_public_key_is_caught(package, tmp_path, trusted_pem):
    intruder = Ed25519PrivateKey.generate()

    def change(files):
        files["public-key.pem"] = public_key_pem(intruder.public_key()).encode()

    tampered = rewrite(package, tmp_path / "t.zip", change)
    status, out = run(tampered)
    assert status == 1
    assert "manifest.json: the signature in manifest.sig does not verify" in out
    assert "tree-head.json: signed by key id" in out
    status, out = run(tampered, "--public-key", str(trusted_pem))
    assert status == 1
    assert "public-key.pem: the package's key (key id" in out
    assert "is not the trusted key" in out


def resign(files: dict[str, bytes], key: Ed25519PrivateKey) -> None:
    """What a forger with their own key would do: re-sign the head and the manifest, fix all hashes."""
    key_id = key_id_of(key.public_key())
    head = json.loads(files["tree-head.json"])
    head["key_id"] = key_id
    statement = TreeHeadStatement(number=head["number"], tree_size=head["tree_size"],
                                  root_hash=bytes.fromhex(head["root_hash"]),
                                  issued_at=datetime.fromisoformat(head["issued_at"]), key_id=key_id)  # fmt: skip
    head["signature"] = base64.b64encode(key.sign(statement.to_bytes())).decode()
    files["tree-head.json"] = json.dumps(head).encode()
    files["public-key.pem"] = public_key_pem(key.public_key()).encode()
    manifest = json.loads(files["manifest.json"])
    manifest["tree_head"], manifest["key_id"] = head, key_id
    for entry in manifest["files"]:
        entry["sha256"] = hashlib.sha256(files[entry["name"]]).hexdigest()
        entry["size"] = len(files[entry["name"]])
    files["manifest.json"] = json.dumps(manifest).encode()
    files["manifest.sig"] = base64.b64encode(key.sign(verify.MANIFEST_CONTEXT + files["manifest.json"]))


def test_a_package_resigned_with_another_key_passes_only_on_its_own_word(package, tmp_path, trusted_pem):
    intruder = Ed25519PrivateKey.generate()
    forged = rewrite(package, tmp_path / "t.zip", lambda files: resign(files, intruder))
    status, out = run(forged)
    assert status == 0
    assert f"key id {key_id_of(intruder.public_key())}) was only checked against itself" in out
    status, out = run(forged, "--public-key", str(trusted_pem))
    assert status == 1
    assert "public-key.pem: the package's key" in out
    assert "is not the trusted key" in out
    real = key_id_of(load_signing_key().public_key())
    status, out = run(forged, "--key-id", real)
    assert status == 1
    assert f"is not the expected key id {real}" in out


# --- Tampering: the ZIP itself --------------------------------------------------------------------------


def test_an_unlisted_file_is_caught(package, tmp_path):
    def change(files):
        files["extra.txt"] = b"planted"

    status, out = run(rewrite(package, tmp_path / "t.zip", change))
    assert status == 1
    assert "extra.txt: in the package but not listed in the manifest" in out


def test_a_missing_file_is_caught(package, tmp_path):
    def change(files):
        del files["approvals.csv"]

    status, out = run(rewrite(package, tmp_path / "t.zip", change))
    assert status == 1
    assert "approvals.csv: listed in the manifest but missing from the package" in out


def test_a_non_zip_cannot_be_verified(tmp_path):
    path = tmp_path / "not.zip"
    path.write_bytes(b"hello")
    status, out = run(path)
    assert status == 2
    assert "not a readable ZIP file" in out


@given(size=st.integers(min_value=1, max_value=70), data=st.data())
@settings(max_examples=60, deadline=None)
def test_the_standalone_verifier_agrees_with_the_ledgers_merkle_module(size, data):
    """verify.py must stay a single stand-alone file, so it carries its own copy of the RFC 9162
    checks: it accepts exactly the proofs audit.merkle accepts, and computes the same key id."""
    from audit import merkle
    from audit.evidence import offline_verifier as verify

    leaves = [merkle.leaf_hash(bytes([i % 256, i // 256])) for i in range(size)]
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    root = merkle.root_from_leaf_hashes(leaves)
    proof = merkle.inclusion_proof(leaves, index)
    assert verify.leaf_hash(b"x") == merkle.leaf_hash(b"x")
    assert verify.InclusionChecker(size, root).check(leaves[index], index, proof)
    assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
    if proof:
        bent = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
        assert verify.InclusionChecker(size, root).check(leaves[index], index, bent) is False
        assert merkle.verify_inclusion(leaves[index], index, size, bent, root) is False


@given(size=st.integers(min_value=1, max_value=300), data=st.data())
@settings(max_examples=40, deadline=None)
def test_the_reusing_checker_decides_every_proof_as_the_plain_algorithm(size, data):
    """GIVEN a run of proofs against one tree, in order or not, some bent (a node, the index or the
    length changed) WHEN each goes through one InclusionChecker THEN every verdict equals the
    ledger's own verify_inclusion: reusing an accepted proof's work never accepts a wrong one."""
    from audit import merkle
    from audit.evidence import offline_verifier as verify

    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(size)]
    root = merkle.root_from_leaf_hashes(leaves)
    checker = verify.InclusionChecker(size, root)
    for _ in range(data.draw(st.integers(min_value=1, max_value=30))):
        index = data.draw(st.integers(min_value=0, max_value=size - 1))
        proof = merkle.inclusion_proof(leaves, index)
        claimed, leaf = index, leaves[index]
        match data.draw(st.sampled_from(["none", "node", "index", "short", "long", "leaf"])):
            case "node" if proof:
                at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
                proof[at] = proof[at][:-1] + bytes([proof[at][-1] ^ 1])
            case "index":
                claimed = data.draw(st.integers(min_value=0, max_value=size))
            case "short" if proof:
                proof = proof[:-1]
            case "long":
                proof = [*proof, leaves[0]]
            case "leaf":
                leaf = leaves[(index + 1) % size]
        assert checker.check(leaf, claimed, proof) == merkle.verify_inclusion(
            leaf, claimed, size, proof, root
        )


def test_the_standalone_key_id_is_the_ledgers():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit import signing
    from audit.evidence import offline_verifier as verify

    public = Ed25519PrivateKey.generate().public_key()
    assert verify.key_id_of(public) == signing.key_id_of(public)
