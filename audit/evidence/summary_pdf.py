"""``summary.pdf``: the content of ``summary.html`` (scope, what was reviewed, exceptions) as a PDF.

Built with ReportLab's layout engine. Its ``Paragraph`` parses a small XML-like markup (``<b>``,
``<font>``, entities), so every value is escaped before it reaches one: a workspace called
``<b>x</b>`` is printed as those characters, never as bold text. Control characters are shown as
``\\uXXXX``, as in the CSV files. ``invariant=1`` fixes the document id and dates, so the same
inputs give the same bytes.

Text is set in DejaVu Sans when Debian's ``fonts-dejavu-core`` is installed (it covers most
scripts); otherwise in the PDF core font Helvetica, which knows only Latin-1, so other characters
are shown as ``\\uXXXX`` rather than dropped.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from audit.canonical import format_time
from audit.collectors import Findings, Scope

FONT_DIRECTORY = Path("/usr/share/fonts/truetype/dejavu")
FONT, FONT_BOLD = "EvidenceSans", "EvidenceSans-Bold"


def _fonts() -> tuple[str, str, bool]:
    """Regular and bold font names, and whether they cover more than Latin-1."""
    regular, bold = FONT_DIRECTORY / "DejaVuSans.ttf", FONT_DIRECTORY / "DejaVuSans-Bold.ttf"
    if not (regular.is_file() and bold.is_file()):
        return "Helvetica", "Helvetica-Bold", False
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(regular)))
        pdfmetrics.registerFont(TTFont(FONT_BOLD, str(bold)))
    return FONT, FONT_BOLD, True


def _shown(character: str, unicode_font: bool) -> str:
    if unicodedata.category(character) in {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}:
        return f"\\u{ord(character):04x}"
    if not unicode_font and ord(character) > 0xFF:
        return f"\\u{ord(character):04x}"
    return character


def _text(value: Any, unicode_font: bool) -> str:
    """``value`` as Paragraph markup that shows exactly its characters (escaped, controls visible)."""
    text = "".join(_shown(character, unicode_font) for character in str(value))
    return escape(text, {'"': "&quot;"})


def summary_pdf(
    *, scope: Scope, head: dict[str, Any], key_id: str, findings: Findings, generator: str, sbom_source: str
) -> bytes:
    regular, bold, unicode_font = _fonts()
    base = ParagraphStyle("body", fontName=regular, fontSize=9, leading=12, splitLongWords=1)
    styles = {
        "title": ParagraphStyle("title", parent=base, fontName=bold, fontSize=15, leading=19, spaceAfter=6),
        "h2": ParagraphStyle("h2", parent=base, fontName=bold, fontSize=12, leading=15, spaceBefore=8),
        "bad": ParagraphStyle("bad", parent=base, fontName=bold, textColor=colors.HexColor("#aa0000")),
        "ok": ParagraphStyle("ok", parent=base, textColor=colors.HexColor("#007700")),
        "th": ParagraphStyle("th", parent=base, fontName=bold),
        "body": base,
    }

    def para(value: Any, style: str = "body") -> Paragraph:
        return Paragraph(_text(value, unicode_font), styles[style])

    def table(rows: list[tuple[Any, Any]]) -> Table:
        grid = Table(
            [[para(label, "th"), para(value)] for label, value in rows], colWidths=[45 * mm, 125 * mm]
        )
        grid.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#cccccc")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return grid

    workspace, organization = scope.workspace, scope.organization
    where = "organisation events" if workspace is None else workspace.name
    title = f"Evidence package: {organization.name} / {where}"
    story: list[Any] = [para(title, "title"), para("Scope", "h2")]
    story.append(
        table(
            [
                ("Organisation", f"{organization.name} ({organization.slug})"),
                (
                    "Workspace",
                    "none: the organisation's own events (sign-ins, accounts, SSO, SCIM)"
                    if workspace is None
                    else f"{workspace.name} ({workspace.slug}, id {workspace.pk})",
                ),
                ("Period (UTC)", f"{format_time(scope.start)} to {format_time(scope.end)} (end excluded)"),
                ("Built", f"{format_time(scope.built_at)} by {generator}"),
                (
                    "Signed tree head",
                    f"#{head['number']}: {head['tree_size']} events, root {head['root_hash']}, "
                    f"issued {head['issued_at']}",
                ),
                ("Ledger key id", key_id),
                ("SBOM", sbom_source),
            ]
        )
    )
    story.append(para("What was reviewed", "h2"))
    story.append(table(sorted(findings.counts.items())) if findings.counts else para("Nothing."))
    story.append(para("Exceptions", "h2"))
    if not findings.exceptions:
        story.append(para("None found.", "ok"))
    for kind, finding in sorted(findings.exceptions.items()):
        story.append(para(f"{kind}: {finding.count}", "bad"))
        story += [para(f"• {example}") for example in finding.examples]
        if finding.count > len(finding.examples):
            story.append(para(f"… and {finding.count - len(finding.examples)} more"))
        story.append(Spacer(1, 3 * mm))
    story += [
        para("How to check this package", "h2"),
        para(
            "Run python verify.py THIS.zip --public-key ledger.pem (or --key-id with the key id the portal "
            "publishes). It needs only Python and cryptography, checks the manifest signature, every file's "
            "hash and every event's inclusion proof, and exits 0 only when all hold. This summary is a "
            "convenience: the signed files are the evidence."
        ),
    ]
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        invariant=1,
        title=title,
        author="governance-portal",
        subject="Evidence summary",
        creator=generator,
        producer="governance-portal",
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
    )
    document.build(story)
    return buffer.getvalue()
