"""``summary.pdf``: in the package and its manifest, readable, the summary's content, escaped, stable."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from audit.collectors import Findings, Scope
from audit.evidence import summary_pdf as pdf
from governance.tenancy.models import Organization, Workspace
from tests.audit.test_evidence import build, members, populate
from tests.tools import unavailable

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])

MARKUP = "<b>x</b><font color=red>big</font> &lt; &amp;"


def text_of(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    # Extraction puts line breaks where the layout wrapped a line: compare on words only.
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def test_the_pdf_is_in_the_package_and_listed_with_its_hash(world, tmp_path):
    """GIVEN a workspace with events and exceptions WHEN its package is built THEN summary.pdf is a
    PDF listed in the signed manifest with its SHA-256 and size."""
    populate(world)
    files = members(build(world, tmp_path / "p.zip"))
    data = files["summary.pdf"]
    assert data.startswith(b"%PDF-")
    entry = next(e for e in json.loads(files["manifest.json"])["files"] if e["name"] == "summary.pdf")
    assert entry == {"name": "summary.pdf", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_the_pdf_holds_the_scope_counts_and_findings(world, tmp_path):
    """GIVEN an approval without its checklist, a self-approval and an overdue service account WHEN
    the package is built THEN the PDF names the scope, every count and every exception with its
    examples, as the HTML summary does."""
    populate(world)
    files = members(build(world, tmp_path / "p.zip"))
    text = text_of(files["summary.pdf"])
    manifest = json.loads(files["manifest.json"])
    assert "Evidence package:" in text
    assert f"{world.ws.name} ({world.ws.slug}, id {world.ws.pk})" in text
    unbroken = text.replace(" ", "")  # a 64-digit hash is split where the cell wraps
    assert manifest["tree_head"]["root_hash"] in unbroken
    assert manifest["key_id"] in unbroken
    assert f"ledger events {manifest['counts']['events']}" in text
    for name, count in manifest["counts"].items():
        if name != "events":
            assert f"{name} {count}" in text
    assert manifest["exceptions"], "populate() makes exceptions"
    for kind, count in manifest["exceptions"].items():
        assert f"{kind}: {count}" in text
    change = world.changes["own"].pk
    assert f"change #{change} tier security by" in text
    assert "<b>crm-sync</b> (due" in text


def test_user_text_is_printed_literally_never_as_markup(world, tmp_path):
    """GIVEN a workspace and a service account named with ReportLab markup and entities WHEN the
    package is built THEN the PDF shows those characters as written (no bold, no colour, no
    entity decoded) and shows control characters as escapes."""
    Workspace.objects.filter(pk=world.ws.pk).update(name=MARKUP + "\x1b[31m")
    populate(world)
    text = text_of(members(build(world, tmp_path / "p.zip"))["summary.pdf"])
    assert f"{MARKUP}\\u001b[31m" in text
    assert "<b>crm-sync</b>" in text


def scope_of(name: str) -> Scope:
    organization = Organization(pk=7, slug="acme", name="Acme")
    workspace = Workspace(pk=11, slug="ops", name=name, organization=organization)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return Scope(
        workspace=workspace, start=moment, end=moment.replace(month=2), built_at=moment.replace(month=3)
    )


def render(name: str = "Ops", findings: Findings | None = None) -> bytes:
    head = {"number": 3, "tree_size": 10, "root_hash": "ab" * 32, "issued_at": "2026-03-01T00:00:00.000000Z"}
    return pdf.summary_pdf(scope=scope_of(name), head=head, key_id="cd" * 16, findings=findings or Findings(),
                           generator="governance-portal test", sbom_source="uv.lock")  # fmt: skip


def test_the_same_inputs_give_the_same_bytes():
    findings = Findings()
    findings.count("ledger events", 10)
    findings.flag("dormant service account", "bot (still active)")
    assert render(findings=findings) == render(findings=findings)
    assert render(name="Ops A") != render(name="Ops B")


def test_without_a_unicode_font_other_scripts_are_shown_as_escapes(monkeypatch, tmp_path):
    """GIVEN no DejaVu font on the machine WHEN a name outside Latin-1 is rendered THEN it is shown
    as \\uXXXX escapes in the core font instead of being dropped."""
    monkeypatch.setattr(pdf, "FONT_DIRECTORY", tmp_path)
    text = text_of(render(name="Café 東京 <i>"))
    assert "Café \\u6771\\u4eac <i>" in text


def test_a_unicode_font_shows_other_scripts(monkeypatch):
    """GIVEN Debian's DejaVu font (``make pytest`` installs fonts-dejavu-core) WHEN a name in
    another script is rendered THEN it is shown as written."""
    if not (pdf.FONT_DIRECTORY / "DejaVuSans.ttf").is_file():
        unavailable("fonts-dejavu-core is not installed (apt-get install fonts-dejavu-core)")
    assert "Ops Ωμέγα <i>" in text_of(render(name="Ops Ωμέγα <i>"))
