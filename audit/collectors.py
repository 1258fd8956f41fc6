"""The records an evidence package carries beside the ledger, registered by the apps that own them.

The ledger knows no domain model. Each app that owns records an auditor needs (approvals,
memberships, service accounts, credentials, policies) registers, in its ``AppConfig.ready``,
one ``EvidenceFile`` per file of the package: its name, its format, and a function that reads
the rows of a ``Scope`` through the app's own selectors, noting exceptions in ``Findings``. The
package builder (``audit.evidence.builder``) writes the files in ``order``.

Collectors yield rows lazily (``.iterator()``), so the summary can be written last without
holding the records in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db.models import Q

EXAMPLES_KEPT = 50  # per kind of exception: the summary lists this many and counts the rest


@dataclass(frozen=True)
class Scope:
    """What a package covers: one workspace (a ``tenancy.Workspace``) or, when ``workspace`` is
    None, the organisation's own events (``organization``: sign-ins, accounts, SSO, SCIM), with
    ``start <= occurred_at < end``."""

    workspace: Any
    start: datetime
    end: datetime
    built_at: datetime
    organization: Any = None

    def __post_init__(self) -> None:
        if self.organization is None:
            if self.workspace is None:
                raise ValueError("a scope is a workspace or an organisation")
            object.__setattr__(self, "organization", self.workspace.organization)

    @property
    def is_organization(self) -> bool:
        """True for a package of the organisation's own events."""
        return self.workspace is None

    @property
    def label(self) -> str:
        """How the scope is named to people: ``acme / ops-eu`` or ``acme (organisation events)``."""
        if self.workspace is None:
            return f"{self.organization.slug} (organisation events)"
        return f"{self.organization.slug} / {self.workspace.slug}"

    def in_period(self, name: str) -> Q:
        return Q(**{f"{name}__gte": self.start, f"{name}__lt": self.end})

    def owns(self, organization: str = "organization", workspace: str = "workspace") -> Q:
        """Rows of this scope, given the names of a model's organisation and workspace fields:
        the workspace's, or the organisation's own (no workspace)."""
        if self.workspace is None:
            return Q(**{organization: self.organization.pk, f"{workspace}__isnull": True})
        return Q(**{workspace: self.workspace.pk})


@dataclass
class Finding:
    """One kind of exception: how many, and the first ``EXAMPLES_KEPT`` examples."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(example)


@dataclass
class Findings:
    """Counts of what was reviewed and the exceptions found, filled while the files are written."""

    counts: dict[str, int] = field(default_factory=dict)
    exceptions: dict[str, Finding] = field(default_factory=dict)

    def count(self, name: str, by: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + by

    def flag(self, kind: str, example: str) -> None:
        self.exceptions.setdefault(kind, Finding()).add(example)


class FileFormat(StrEnum):
    """How the builder writes a collector's rows."""

    JSON_ARRAY = "json-array"  # an iterable of JSON values, streamed as one array
    JSON_DOCUMENT = "json-document"  # one JSON value, indented
    CSV = "csv"  # rows under ``header``


@dataclass(frozen=True)
class EvidenceFile:
    """One file of the package: ``rows(scope, findings)`` gives its content in ``file_format``."""

    name: str
    order: int
    file_format: FileFormat
    rows: Callable[[Scope, Findings], Iterable[Any] | Any]
    header: tuple[str, ...] = ()
    # Whether the file belongs in an organisation's package too (its ``rows`` then handles a
    # scope whose ``workspace`` is None); workspace records such as approvals do not.
    organization: bool = False


_files: dict[str, EvidenceFile] = {}


def register_evidence_file(evidence_file: EvidenceFile) -> None:
    """Add a file to every package; registering one name twice with another shape is a bug."""
    if evidence_file.file_format is FileFormat.CSV and not evidence_file.header:
        raise ValueError(f"{evidence_file.name}: a CSV file needs its header")
    existing = _files.get(evidence_file.name)
    if existing is not None and existing != evidence_file:
        raise ValueError(f"evidence file {evidence_file.name!r} is already registered differently")
    _files[evidence_file.name] = evidence_file


def evidence_files(scope: Scope | None = None) -> list[EvidenceFile]:
    """The registered files, in the order the package holds them (those of ``scope``'s kind when given)."""
    files = [
        evidence_file
        for evidence_file in _files.values()
        if scope is None or not scope.is_organization or evidence_file.organization
    ]
    return sorted(files, key=lambda evidence_file: (evidence_file.order, evidence_file.name))
