"""``summary.html``: what the package covers, what was reviewed, and the exceptions found.

Built with ``html.escape`` on every value (names, summaries and e-mails are user-supplied), no
scripts, no external resources, and a CSP that forbids both should the file be served.
"""

from __future__ import annotations

from html import escape
from typing import Any

from audit.canonical import format_time
from audit.collectors import Findings, Scope

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem;color:#222}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}"
    ".bad{color:#a00}.ok{color:#070}code{font-size:.9em}"
)


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def summary_html(
    *, scope: Scope, head: dict[str, Any], key_id: str, findings: Findings, generator: str, sbom_source: str
) -> bytes:
    workspace, organization = scope.workspace, scope.organization
    title = f"Evidence package: {organization.name} / {'organisation events' if workspace is None else workspace.name}"
    if workspace is None:
        workspace_cell = "none: the organisation&#x27;s own events (sign-ins, accounts, SSO, SCIM)"
    else:
        workspace_cell = f"{_e(workspace.name)} (<code>{_e(workspace.slug)}</code>, id {_e(workspace.pk)})"
    counts = "".join(
        f"<tr><th>{_e(name)}</th><td>{_e(count)}</td></tr>" for name, count in sorted(findings.counts.items())
    )
    if findings.exceptions:
        parts = []
        for kind, finding in sorted(findings.exceptions.items()):
            items = "".join(f"<li>{_e(example)}</li>" for example in finding.examples)
            more = finding.count - len(finding.examples)
            extra = f"<li>… and {more} more</li>" if more > 0 else ""
            parts.append(f"<h3 class='bad'>{_e(kind)}: {_e(finding.count)}</h3><ul>{items}{extra}</ul>")
        exceptions = "".join(parts)
    else:
        exceptions = "<p class='ok'>None found.</p>"
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{_e(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{_e(title)}</h1>
<h2>Scope</h2>
<table>
<tr><th>Organisation</th><td>{_e(organization.name)} (<code>{_e(organization.slug)}</code>)</td></tr>
<tr><th>Workspace</th><td>{workspace_cell}</td></tr>
<tr><th>Period (UTC)</th><td>{_e(format_time(scope.start))} to {_e(format_time(scope.end))} (end excluded)</td></tr>
<tr><th>Built</th><td>{_e(format_time(scope.built_at))} by {_e(generator)}</td></tr>
<tr><th>Signed tree head</th><td>#{_e(head["number"])}: {_e(head["tree_size"])} events, root <code>{_e(head["root_hash"])}</code>, issued {_e(head["issued_at"])}</td></tr>
<tr><th>Ledger key id</th><td><code>{_e(key_id)}</code></td></tr>
<tr><th>SBOM</th><td>{_e(sbom_source)}</td></tr>
</table>
<h2>What was reviewed</h2>
<table>{counts}</table>
<h2>Exceptions</h2>
{exceptions}
<h2>How to check this package</h2>
<p>Run <code>python verify.py THIS.zip --public-key ledger.pem</code> (or <code>--key-id</code> with the
key id the portal publishes). It needs only Python and <code>cryptography</code>, checks the manifest
signature, every file's hash and every event's inclusion proof, and exits 0 only when all hold.
This page is a convenience: the signed files are the evidence.</p>
</body></html>
"""
    return body.encode("utf-8")
