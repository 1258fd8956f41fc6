"""Evidence packages: what the build puts in, what it leaves out, and what it refuses."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit import merkle
from audit.canonical import canonical_bytes
from audit.evidence import offline_verifier as verify
from audit.evidence.builder import _ProofTree
from audit.evidence.exports import csv_cell, csv_rows, jsonl_line
from audit.models import AuditEvent
from audit.proofs import TILE
from audit.sealing import ledger_seal_all
from audit.signing import TreeHeadStatement, key_id_of, load_signing_key
from governance.tenancy.models import Workspace
from tests.factories import AuditEventFactory, make_events
from workflows.changes.models import Approval, ChangeRequest
from workflows.integrations.models import Integration
from workflows.service_accounts.models import ServiceAccount

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

INJECTION = "=cmd|' /C calc'!A0"
CONTROL_TEXT = "line\nbreak \x1b[31mred\x1b[0m del\x7f bell\x07 sep\u2028 c1\x85 tab\t"
CANARY = "canary-evidence-secret-5b1d7e"


def today() -> str:
    return timezone.now().astimezone(UTC).date().isoformat()


def build(world, out: Path, *, workspace: str = "ops-eu", first: str | None = None, last: str | None = None,
          extra: tuple = ()) -> Path:  # fmt: skip
    call_command(
        "evidence_build", "--workspace", workspace, "--from", first or today(), "--to", last or today(),
        "--out", str(out), *extra, stdout=io.StringIO(),
    )  # fmt: skip
    return out


def populate(world) -> None:
    """Events and records of every kind in the own workspace (and others that must stay out)."""
    make_events(3, workspace=world.ws)
    AuditEventFactory(workspace=world.ws, action="membership.role_changed", data={"note": CONTROL_TEXT})
    make_events(2, workspace=world.sibling)
    ChangeRequest.objects.filter(pk=world.changes["own"].pk).update(
        summary=INJECTION, required_tiers=[{"code": "security", "reason": "pii", "approver": "compliance_officer",
                                            "checklist": True}],
    )  # fmt: skip
    # An approval written around the service (as a direct database write would): its author
    # approves, without the checklist: both are exceptions the summary must show.
    Approval.objects.create(change=world.changes["own"], reviewer=world.users["workflow_builder"],
                            tier="security", decision="approve", comment="self-approved", checklist={})  # fmt: skip
    integration = Integration.objects.create(workspace=world.ws, name="CRM", slug="crm", kind="crm")
    past = timezone.now() - timedelta(days=400)
    ServiceAccount.objects.create(
        workspace=world.ws, integration=integration, name="<b>crm-sync</b>", scopes=[],
        created_by=world.users["workspace_owner"], created_at=past, active_since=past,
        rotation_period_days=90, rotation_due_at=past + timedelta(days=90),
    )  # fmt: skip
    from workflows.credentials.services import credential_create

    credential_create(
        actor=world.users["workspace_owner"], integration=integration, name="api_key", value=CANARY
    )
    ledger_seal_all()


@pytest.fixture
def package(world, tmp_path) -> Path:
    populate(world)
    return build(world, tmp_path / "evidence.zip")


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# --- What is inside ---------------------------------------------------------------------------


def test_the_package_holds_every_file_listed_and_signed(package):
    files = members(package)
    assert set(files) == {
        "manifest.json", "manifest.sig", "public-key.pem", "tree-head.json", "events.jsonl", "proofs.jsonl",
        "approvals.csv", "approvals.json", "memberships.csv", "role-changes.csv", "service-accounts.csv",
        "credentials.csv", "ai-decisions.csv", "policies.json", "sbom.cdx.json", "summary.html", "summary.pdf", "verify.py",
    }  # fmt: skip
    manifest = json.loads(files["manifest.json"])
    assert {entry["name"] for entry in manifest["files"]} == set(files) - {"manifest.json", "manifest.sig"}
    key = load_signing_key().public_key()
    assert manifest["key_id"] == key_id_of(key) == verify.key_id_of(key)
    assert manifest["scope"]["workspace"]["slug"] == "ops-eu"
    assert manifest["generator"].startswith("governance-portal ")
    assert files["verify.py"] == Path(verify.__file__).read_bytes()


def test_events_are_exactly_the_workspace_events_as_their_stored_bytes(package, world):
    """GIVEN events in three workspaces WHEN the own workspace's package is built THEN it carries
    exactly the own events, byte for byte, and nothing of the others."""
    files = members(package)
    lines = [json.loads(line) for line in files["events.jsonl"].splitlines()]
    stored = dict(
        AuditEvent.objects.filter(workspace=world.ws, sequence__isnull=False)
        .values_list("sequence", "canonical")
        .order_by("sequence")
    )
    assert {line["sequence"]: line["canonical"].encode() for line in lines} == {
        sequence: bytes(canonical) for sequence, canonical in stored.items()
    }
    assert json.loads(files["manifest.json"])["counts"]["events"] == len(lines) == len(stored) >= 6
    everything = b"".join(files.values())
    for other in AuditEvent.objects.exclude(workspace=world.ws).exclude(workspace__isnull=True):
        assert str(other.uid).encode() not in everything
    assert b"foreign change" not in everything
    assert b"Globex" not in everything


def test_proofs_use_the_latest_head_and_match_the_merkle_module(package):
    files = members(package)
    head = json.loads(files["tree-head.json"])
    statement = TreeHeadStatement(number=head["number"], tree_size=head["tree_size"],
                                  root_hash=bytes.fromhex(head["root_hash"]),
                                  issued_at=datetime.fromisoformat(head["issued_at"]), key_id=head["key_id"])  # fmt: skip
    assert verify.tree_head_statement(head) == statement.to_bytes()
    for line in files["proofs.jsonl"].splitlines():
        proof = json.loads(line)
        assert proof["leaf_index"] == proof["sequence"] - 1
        assert merkle.verify_inclusion(bytes.fromhex(proof["leaf_hash"]), proof["leaf_index"], head["tree_size"],
                                       [bytes.fromhex(p) for p in proof["path"]], bytes.fromhex(head["root_hash"]))  # fmt: skip


def test_the_proof_tree_keeps_few_tiles_and_agrees_with_the_reference(db):
    make_events(2 * TILE + 300)
    ledger_seal_all()
    leaves = [bytes(v) for v in AuditEvent.objects.order_by("sequence").values_list("leaf_hash", flat=True)]
    tree = _ProofTree(len(leaves))
    for sequence in range(1, len(leaves) + 1, 97):
        assert tree.inclusion_proof(sequence) == merkle.inclusion_proof(leaves, sequence - 1)
        assert len(tree._tile_leaves) <= _ProofTree.MAX_TILES


def test_credentials_carry_fingerprints_and_never_a_value(package):
    files = members(package)
    assert all(CANARY.encode() not in content for content in files.values())
    rows = list(csv.DictReader(io.StringIO(files["credentials.csv"].decode())))
    assert [(row["credential"], row["version"], row["status"]) for row in rows] == [
        ("api_key", "1", "active")
    ]
    assert rows[0]["fingerprint"]


def test_approvals_show_tiers_approvers_and_the_segregation_checks(package):
    files = members(package)
    changes = json.loads(files["approvals.json"])
    own = next(change for change in changes if change["approvals"])
    assert own["checks"] == {"author_is_not_an_approver": False, "each_approver_counted_once": True,
                             "required_tiers_approved": True, "checklists_complete": False}  # fmt: skip
    assert own["approvals"][0]["reviewer"] == "workflow_builder@acme.test"
    assert own["diff_summary"]["new_workflow"] is True
    summary = files["summary.html"].decode()
    for exception in ("approval missing its checklist", "segregation of duties not met",
                      "service account rotation overdue", "dormant service account"):  # fmt: skip
        assert exception in summary
    manifest = json.loads(files["manifest.json"])
    assert manifest["exceptions"]["approval missing its checklist"] == 1


# --- Safe exports -----------------------------------------------------------------------------


def test_csv_neutralises_formulas_in_the_change_summary(package):
    text = members(package)["approvals.csv"].decode()
    assert "\r\n" in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows[0]["summary"] == "'" + INJECTION
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row.values())


@pytest.mark.parametrize("trigger", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_trigger_is_neutralised(trigger):
    assert csv_cell(trigger + "1+1") == "'" + trigger + "1+1"


def test_csv_shows_control_characters_as_escapes_and_details_as_json(package):
    assert csv_cell("a\x1b[2Jb\x07c\u2028d\ttab\nline") == "a\\u001b[2Jb\\u0007c\\u2028d\ttab\nline"
    rows = list(csv.DictReader(io.StringIO(members(package)["role-changes.csv"].decode(), newline="")))
    details = next(row["details"] for row in rows if row["action"] == "membership.role_changed")
    assert "\x1b" not in details
    assert json.loads(details) == {"note": CONTROL_TEXT}


def test_csv_quoting_follows_rfc_4180():
    out = b"".join(csv_rows(["a", "b"], [['say "hi", then\r\nleave', "plain"]])).decode()
    assert out == 'a,b\r\n"say ""hi"", then\r\nleave",plain\r\n'


def test_jsonl_escapes_control_characters_and_keeps_the_bytes(package, world):
    raw = members(package)["events.jsonl"]
    assert raw.isascii()
    assert not any(byte < 0x20 and byte != 0x0A for byte in raw)
    assert b"\x7f" not in raw
    event = AuditEvent.objects.get(action="membership.role_changed", workspace=world.ws)
    line = next(
        json.loads(line) for line in raw.splitlines() if json.loads(line)["sequence"] == event.sequence
    )
    assert line["canonical"].encode("utf-8") == bytes(event.canonical)
    assert json.loads(line["canonical"])["data"]["note"] == CONTROL_TEXT


def test_jsonl_line_escapes_del_and_separators():
    assert jsonl_line({"x": "a\x7fb\u2028c\x1b"}) == b'{"x":"a\\u007fb\\u2028c\\u001b"}\n'


def test_summary_escapes_everything(world, tmp_path):
    Workspace.objects.filter(pk=world.ws.pk).update(name='<script>alert("ws")</script>')
    populate(world)
    summary = members(build(world, tmp_path / "p.zip"))["summary.html"].decode()
    assert "<script>" not in summary
    assert "<b>" not in summary
    assert "&lt;script&gt;alert(&quot;ws&quot;)&lt;/script&gt;" in summary
    assert "&lt;b&gt;crm-sync&lt;/b&gt;" in summary


# --- SBOM -------------------------------------------------------------------------------------


def test_sbom_comes_from_uv_export_when_uv_is_there(package):
    files = members(package)
    sbom = json.loads(files["sbom.cdx.json"])
    assert (sbom["bomFormat"], sbom["specVersion"]) == ("CycloneDX", "1.5")
    names = {component["name"] for component in sbom["components"]}
    assert {"django", "cryptography", "rfc8785"} <= names
    assert "pytest" not in names  # runtime dependencies only
    assert json.loads(files["manifest.json"])["sbom_source"].startswith("uv export")


def test_sbom_falls_back_to_the_lock_file_without_uv(world, tmp_path, monkeypatch):
    from audit.evidence import sbom

    monkeypatch.setattr(sbom, "_uv", lambda: None)
    populate(world)
    files = members(build(world, tmp_path / "p.zip"))
    document = json.loads(files["sbom.cdx.json"])
    names = {component["name"] for component in document["components"]}
    assert {"django", "cryptography"} <= names
    assert "pytest" not in names
    assert json.loads(files["manifest.json"])["sbom_source"].startswith(
        "minimal CycloneDX 1.5 made from uv.lock"
    )


# --- The build is recorded; bad input is refused ------------------------------------------------------------


def test_the_build_is_recorded_in_the_ledger(package, world):
    event = AuditEvent.objects.get(action="evidence.package_built")
    assert event.workspace_id == world.ws.pk
    assert (
        event.data["events"] == AuditEvent.objects.filter(workspace=world.ws, sequence__isnull=False).count()
    )
    assert event.data["manifest_sha256"] == hashlib.sha256(members(package)["manifest.json"]).hexdigest()


def test_unknown_workspace_is_refused(world, tmp_path):
    with pytest.raises(CommandError, match="No workspace 'nope'"):
        build(world, tmp_path / "p.zip", workspace="nope")


def test_inverted_period_is_refused(world, tmp_path):
    with pytest.raises(CommandError, match="inverted: --to 2026-01-01 is before --from 2026-02-01"):
        build(world, tmp_path / "p.zip", first="2026-02-01", last="2026-01-01")


def test_empty_period_is_refused(world, tmp_path):
    ledger_seal_all()
    with pytest.raises(
        CommandError, match=r"No ledger events for workspace 'ops-eu' between .*nothing to prove"
    ):
        build(world, tmp_path / "p.zip", first="2020-01-01", last="2020-12-31")
    assert not list(tmp_path.iterdir())


def test_malformed_date_is_refused(world, tmp_path):
    with pytest.raises(CommandError, match="--from '2026-13-01' is not a date"):
        build(world, tmp_path / "p.zip", first="2026-13-01")


def test_unsealed_events_in_scope_are_refused(world, tmp_path):
    with pytest.raises(CommandError, match=r"not sealed yet\. Run `python manage\.py audit_seal`"):
        build(world, tmp_path / "p.zip")
    assert not list(tmp_path.iterdir())


def test_a_workspace_outside_the_auditors_assignment_is_refused(world, tmp_path):
    ledger_seal_all()
    with pytest.raises(CommandError, match="outside their assignment"):
        build(world, tmp_path / "p.zip", workspace="fin-us", extra=("--as", "auditor@acme.test"))
    with pytest.raises(CommandError, match="outside their assignment"):
        build(world, tmp_path / "p.zip", extra=("--as", "viewer@acme.test"))
    denials = AuditEvent.objects.filter(action="access.denied", outcome="denied").order_by("id")
    assert [(e.actor_label, e.workspace_id, e.data["action"]) for e in denials] == [
        ("auditor@acme.test", world.sibling.pk, "evidence.order"),
        ("viewer@acme.test", world.ws.pk, "evidence.order"),
    ]
    assert not list(tmp_path.iterdir())
    ledger_seal_all()  # the denials are events of the period too
    build(world, tmp_path / "p.zip", extra=("--as", "auditor@acme.test"))
    assert AuditEvent.objects.get(action="evidence.package_built").actor_label == "auditor@acme.test"


# --- At ledger scale: tile-wise proofs, streamed lines --------------------------------------------


def test_proofs_of_dense_sparse_and_open_tiles_equal_the_reference(world, tmp_path):
    """GIVEN own events filling most of a full tile, a few in a tile of another workspace's events,
    and some in the open last tile WHEN the package is built THEN every proof equals the merkle
    module's proof over all leaves, and every line is exactly what ``jsonl_line`` writes."""
    make_events(TILE - 40, workspace=world.ws)
    make_events(600, workspace=world.sibling)
    make_events(3, workspace=world.ws)
    make_events(TILE, workspace=world.sibling)
    make_events(120, workspace=world.ws)
    ledger_seal_all()
    files = members(build(world, tmp_path / "p.zip"))
    sealed = AuditEvent.objects.filter(sequence__isnull=False).order_by("sequence")
    leaves = [bytes(v) for v in sealed.values_list("leaf_hash", flat=True)]
    size = json.loads(files["tree-head.json"])["tree_size"]
    events = files["events.jsonl"].splitlines(keepends=True)
    proofs = files["proofs.jsonl"].splitlines(keepends=True)
    assert len(events) == len(proofs) >= TILE - 40 + 3 + 120
    tiles = {(json.loads(line)["sequence"] - 1) // TILE for line in proofs}
    assert (size - 1) // TILE in tiles  # the open last tile
    assert len(tiles) >= 3
    for event_line, proof_line in zip(events, proofs, strict=True):
        event, proof = json.loads(event_line), json.loads(proof_line)
        assert jsonl_line(event) == event_line
        assert jsonl_line(proof) == proof_line
        assert proof["leaf_hash"] == merkle.leaf_hash(event["canonical"].encode()).hex()
        expected = merkle.inclusion_proof(leaves[:size], proof["sequence"] - 1)
        assert [bytes.fromhex(node) for node in proof["path"]] == expected


def test_a_tree_leaf_that_is_not_the_events_hash_stops_the_build(world, tmp_path, monkeypatch):
    """GIVEN a sealed tree whose stored leaf for one event is not the hash of its bytes WHEN the
    package is built THEN the build stops and leaves no file."""
    make_events(TILE + 10, workspace=world.ws)
    ledger_seal_all()
    original = _ProofTree._leaves_of_tile

    def damaged(self, tile):
        leaves = list(original(self, tile))
        leaves[5] = bytes(32)
        return leaves

    monkeypatch.setattr(_ProofTree, "_leaves_of_tile", damaged)
    with pytest.raises(CommandError, match="the ledger is damaged"):
        build(world, tmp_path / "p.zip")
    assert list(tmp_path.iterdir()) == []


def test_a_record_naming_another_workspace_stops_the_build(world, tmp_path):
    """GIVEN an event filed under the workspace whose canonical record names another WHEN the
    package is built THEN the build refuses and names the event."""
    make_events(3, workspace=world.ws)
    values = {
        "uid": uuid.uuid4(), "occurred_at": timezone.now(), "category": "admin", "action": "membership.created",
        "outcome": "success", "actor_type": "system", "actor_id": None, "actor_label": "system",
        "organization_id": world.sibling.organization_id, "workspace_id": world.sibling.pk, "target_type": "",
        "target_id": "", "target_label": "", "request_id": "", "ip": None, "user_agent": "", "data": {},
    }  # fmt: skip
    AuditEvent.objects.create(canonical=canonical_bytes(values), **{**values, "workspace_id": world.ws.pk})
    ledger_seal_all()
    with pytest.raises(CommandError, match="names another workspace"):
        build(world, tmp_path / "p.zip")
