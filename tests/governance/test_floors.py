"""The floors of docs/architecture.md hold: every module sits on exactly one floor of the import
contract, and the parts of the floors (the contract's entries) import each other without cycles.

``lint-imports`` (run by ``make test``) checks that imports point down; these tests check what it
cannot: that a new module is placed on a floor at all, and that no cycle hides within one floor."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
# One implementation of the cycle search, shared with scripts/import_report.py.
_spec = importlib.util.spec_from_file_location("import_report", ROOT / "scripts" / "import_report.py")
import_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_report)
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
# Packages whose ``__init__`` only holds the parts below it (the project package's no longer loads
# the Celery app: the task modules do, through governance.core.jobs).
CONTAINERS = {"governance", "governance.tenancy", "governance.access", "governance.crypto", "audit"}
CONTAINER_IMPORTS: dict[str, set[str]] = {}
# The apps, for grouping an app's modules on one floor into one part.
APPS = (
    "governance.core",
    "governance.tenancy",
    "governance.access",
    "governance.crypto",
    "governance.demo",
    "audit.evidence",
    "audit.siem",
    "audit",
    "accounts",
    "workflows",
    "governance",
)


def _floors() -> list[list[str]]:
    contract = next(c for c in CONFIG["contracts"] if c["id"] == "floors")
    return [[part.strip() for part in layer.replace("|", ":").split(":")] for layer in contract["layers"]]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*CONFIG["root_packages"], include_external_packages=False)


def _part_of(module: str, parts: list[str]) -> list[str]:
    return [part for part in parts if module == part or module.startswith(part + ".")]


def test_every_module_sits_on_exactly_one_floor(graph):
    parts = [part for floor in _floors() for part in floor]
    misplaced = {}
    for module in sorted(graph.modules):
        if module in CONTAINERS:
            continue
        owners = _part_of(module, parts)
        if len(owners) != 1:
            misplaced[module] = owners
    assert misplaced == {}, "place each module on one floor in pyproject.toml [tool.importlinter]"


def test_container_packages_hold_no_code():
    for package in CONTAINERS:
        init = ROOT / package.replace(".", "/") / "__init__.py"
        code = {
            line
            for line in init.read_text().splitlines()
            if line.startswith(("import ", "from ", "def ", "class "))
            and line != "from __future__ import annotations"
        }
        assert code <= CONTAINER_IMPORTS.get(package, set()), package


def _unit_of(module: str, floors: list[list[str]]) -> str | None:
    """An app's modules on one floor ("governance.tenancy@2"): the unit within which modules may
    import each other both ways (a service and its task), and between which no cycle may form."""
    for number, floor in enumerate(reversed(floors), start=1):
        if _part_of(module, floor):
            app = next(app for app in APPS if module == app or module.startswith(app + "."))
            return f"{app}@{number}"
    return None


def test_the_apps_parts_on_each_floor_import_each_other_without_cycles(graph):
    """GIVEN every import, function-level ones included WHEN modules are grouped by app and floor
    (tenancy's models on floor 2 apart from its services on floor 4) THEN the groups form no cycle."""
    floors = _floors()
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        source = _unit_of(module, floors)
        if source is None:
            continue
        edges.setdefault(source, set())
        for imported in graph.find_modules_directly_imported_by(module):
            target = _unit_of(imported, floors)
            if target is not None and target != source:
                edges[source].add(target)
                edges.setdefault(target, set())
    assert import_report.cycles(edges) == []
    assert len(edges) > 10  # the grouping found the apps


def test_the_contracts_ignore_no_import():
    """Every import counts: no contract carries ``ignore_imports``."""
    assert [c["id"] for c in CONFIG["contracts"] if c.get("ignore_imports")] == []
    assert {c["id"] for c in CONFIG["contracts"]} >= {
        "floors",
        "ledger-knows-no-domain",
        "lower-apps-know-no-workflows",
        "access-knows-no-login",
        "domain-apps-independent",
    }
