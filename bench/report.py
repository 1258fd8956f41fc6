"""Write the measured figures into docs/benchmarks.md: one command from the runs' output to the table.

    python bench/report.py run NAME [ARGS...]   # run bench/NAME.py at full size, keep its figures
    python bench/report.py write                # rewrite the generated section of docs/benchmarks.md

``run`` runs the script with ``$BENCH_RESULTS`` set (``common.show`` records every figure) and
keeps, in docs/bench-results/NAME.json, the figures with the command, the commit, the time and the
load average before and after (the machine is shared: read the ratios with the load). ``write``
rewrites the part of docs/benchmarks.md between the two ``bench-report`` markers from every file
in docs/bench-results/, so the table always says which run produced it. A script never run this
way keeps its hand-written section, with the date and commit written there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "bench-results"
DOC = ROOT / "docs" / "benchmarks.md"
START = "<!-- bench-report:start (written by bench/report.py write; do not edit by hand) -->"
END = "<!-- bench-report:end -->"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def commit() -> str:
    """The checked-out commit (short), with ``+changes`` when the work tree differs from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "."], cwd=ROOT, check=False).returncode
    return f"{head}+changes" if dirty else head


def run(name: str, arguments: list[str]) -> Path:
    """Run bench/NAME.py with ``arguments``, print its output as it comes, keep its figures."""
    script = ROOT / "bench" / f"{name}.py"
    if not script.exists():
        raise SystemExit(f"no bench/{name}.py")
    with tempfile.TemporaryDirectory() as directory:
        figures_file = Path(directory) / "figures.json"
        environment = dict(os.environ, BENCH_RESULTS=str(figures_file))
        before, started, revision = load_average(), time.time(), commit()  # the code that runs
        finished = subprocess.run(
            [sys.executable, str(script), *arguments], cwd=ROOT, env=environment, check=False
        )
        after = load_average()
        if finished.returncode != 0:
            raise SystemExit(f"bench/{name}.py exited with {finished.returncode}: nothing kept")
        figures = json.loads(figures_file.read_text())
    record = {
        "script": f"bench/{name}.py",
        "command": " ".join([f"python bench/{name}.py", *arguments]),
        "commit": revision,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.time() - started),
        "load_before": before,
        "load_after": after,
        "cores": os.cpu_count(),
        "figures": figures,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"kept {len(figures)} figures in {path.relative_to(ROOT)}")
    return path


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").strip() or " "


def section(record: dict) -> str:
    """The markdown of one run: how it was made, then its figures."""
    lines = [
        f"### `{record['script']}`",
        "",
        f"`{record['command']}` · commit `{record['commit']}` · {record['finished']} · "
        f"{record['seconds']} s · load average {record['load_before']} before, {record['load_after']} "
        f"after ({record['cores']} cores)",
    ]
    current = None
    for figure in record["figures"]:
        if figure["section"] != current:
            current = figure["section"]
            lines += [
                "",
                f"**{_cell(current)}**",
                "",
                "| figure | value | target | verdict |",
                "| --- | --- | --- | --- |",
            ]
        cells = (figure["label"], figure["value"], figure["target"], figure["verdict"])
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def write() -> None:
    """Rewrite the generated section of docs/benchmarks.md from docs/bench-results/*.json."""
    records = [json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))]
    body = "\n\n".join(section(record) for record in records) or "(no run recorded yet)"
    text = DOC.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"docs/benchmarks.md has no {START!r} … {END!r} section")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n\n{body}\n\n{END}{tail}")
    print(f"wrote {len(records)} runs into {DOC.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser(
        "run", help="run one bench at full size, keep its figures, rewrite the docs"
    )
    run_parser.add_argument("name", help="the script's name without .py, e.g. access_lists")
    run_parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the script's own options")
    commands.add_parser("write", help="rewrite the generated section of docs/benchmarks.md")
    options = parser.parse_args()
    if options.command == "run":
        run(options.name, options.arguments)
    write()


if __name__ == "__main__":
    main()
