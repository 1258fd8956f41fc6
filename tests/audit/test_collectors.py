"""Evidence files are registered by the apps that own the records; the builder writes them in order."""

from __future__ import annotations

import pytest

from audit.collectors import EvidenceFile, FileFormat, evidence_files, register_evidence_file


def test_the_owning_apps_register_every_record_file_in_package_order():
    """GIVEN the installed apps WHEN Django has started THEN the package's record files are
    registered by their owners, in the order the package has always held them."""
    files = evidence_files()
    assert [f.name for f in files] == [
        "approvals.json",
        "approvals.csv",
        "memberships.csv",
        "role-changes.csv",
        "service-accounts.csv",
        "credentials.csv",
        "ai-decisions.csv",
        "policies.json",
    ]
    owners = {f.name: f.rows.__module__ for f in files}
    assert owners["memberships.csv"] == "governance.tenancy.evidence"
    assert owners["policies.json"] == "governance.access.evidence"
    assert owners["approvals.json"].startswith("workflows.")
    assert owners["ai-decisions.csv"] == "workflows.executions.evidence"
    assert all(f.header for f in files if f.file_format is FileFormat.CSV)


def test_a_name_registered_twice_differently_is_refused():
    with pytest.raises(ValueError, match="already registered differently"):
        register_evidence_file(EvidenceFile("approvals.csv", 99, FileFormat.JSON_ARRAY, lambda scope, f: []))


def test_a_csv_file_needs_its_header():
    with pytest.raises(ValueError, match="needs its header"):
        register_evidence_file(EvidenceFile("other.csv", 99, FileFormat.CSV, lambda scope, f: []))
