"""A picture of a workflow: its definition drawn by Graphviz (``dot``) as SVG, with a change's
added, changed and removed steps marked.

The DOT source is built by the ``graphviz`` package (which quotes every label); ``dot`` runs as a
subprocess with a deadline. Labels are the builder's own text, shortened; the SVG is shown as an
image (``<img src="data:image/svg+xml…">``), so nothing in it can run in the page. Where ``dot``
is not installed (Debian: ``apt-get install graphviz``) the pages say so and show the JSON only.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess

logger = logging.getLogger(__name__)

DOT_TIMEOUT_SECONDS = 5
_LABEL_PART = 48
_COLOURS = {
    "added": ("#ecfdf3", "#067647", "solid"),
    "changed": ("#fffaeb", "#b54708", "solid"),
    "removed": ("#fef3f2", "#b42318", "dashed"),
}


def _short(text: object) -> str:
    import graphviz  # imported on first drawing: no start-up of a command pays for it

    text = " ".join(str(text).split())
    return graphviz.escape(text if len(text) <= _LABEL_PART else text[: _LABEL_PART - 1] + "…")


def _step_label(step: dict, mark: str | None) -> str:
    lines = [step.get("id", "?"), str(step.get("type", "")).replace("_", " ")]
    if step.get("integration"):
        lines.append(f"{step.get('method', '')} {step['integration']}{step.get('path', '')}".strip())
    if step.get("type") == "ai_prompt":
        lines.append(f"model {step.get('model', '?')} via {step.get('provider', '?')}")
    if step.get("approver_role"):
        lines.append(f"approved by {step['approver_role']}")
    if mark:
        lines.append(f"[{mark}]")
    return "\n".join(_short(line) for line in lines)


def _trigger_label(trigger: dict) -> str:
    kind = trigger.get("type", "manual")
    detail = trigger.get("cron") or trigger.get("path") or ""
    return _short(f"trigger: {kind} {detail}".strip())


def definition_dot(definition: dict, *, marks: dict[str, str] | None = None, removed: tuple = ()) -> str:
    """The DOT source of ``definition``; ``marks`` maps step ids to added/changed, ``removed`` are
    the steps a change takes out (drawn dashed, unconnected)."""
    import graphviz

    marks = marks or {}
    graph = graphviz.Digraph("workflow", graph_attr={"rankdir": "TB", "fontname": "DejaVu Sans"})
    graph.attr(
        "node",
        shape="box",
        style="rounded,filled",
        fillcolor="#ffffff",
        fontname="DejaVu Sans",
        fontsize="11",
    )
    graph.attr("edge", fontname="DejaVu Sans", fontsize="10")
    steps = [step for step in definition.get("steps", []) if isinstance(step, dict) and "id" in step]
    # Node names are positions, never the builder's ids: DOT reads "a:b" as node a, port b.
    names = {step["id"]: f"s{index}" for index, step in enumerate(steps)}
    graph.node("trigger", _trigger_label(definition.get("trigger") or {}), shape="oval", fillcolor="#eff8ff")
    if steps:
        graph.edge("trigger", names[steps[0]["id"]])
    for step in steps:
        mark = marks.get(step["id"])
        fill, line, style = _COLOURS.get(mark, ("#ffffff", "#344054", "solid"))
        name = names[step["id"]]
        graph.node(name, _step_label(step, mark), fillcolor=fill, color=line, style=f"rounded,filled,{style}")
        if step.get("type") == "branch":
            for key, label in (("then", f"if {step.get('condition', '')}"), ("else", "else")):
                if step.get(key) in names:
                    graph.edge(name, names[step[key]], label=_short(label))
        elif step.get("routes"):
            field = step["routes"].get("field", "")
            for choice, target in (step["routes"].get("next") or {}).items():
                if target in names:
                    graph.edge(name, names[target], label=_short(f"{field} = {choice}"))
        elif step.get("next") in names:
            graph.edge(name, names[step["next"]])
    for index, step in enumerate(removed):
        fill, line, style = _COLOURS["removed"]
        graph.node(
            f"r{index}",
            _step_label(step, "removed"),
            fillcolor=fill,
            color=line,
            style=f"rounded,filled,{style}",
        )
    return graph.source


def svg_of(source: str) -> str | None:
    """``dot``'s SVG for ``source``, or None when dot is missing, fails or overruns its deadline.
    A drawing is kept per process (the last ``_CACHE_SIZE``): versions never change."""
    if source in _drawn:
        return _drawn[source]
    svg = _draw(source)
    if svg is not None:
        if len(_drawn) >= _CACHE_SIZE:
            _drawn.pop(next(iter(_drawn)))
        _drawn[source] = svg
    return svg


_CACHE_SIZE = 128
_drawn: dict[str, str] = {}


def _draw(source: str) -> str | None:
    dot = shutil.which("dot")
    if dot is None:
        return None
    try:
        result = subprocess.run(  # noqa: S603 (a fixed binary; the source goes in on stdin)
            [dot, "-Tsvg"],
            input=source.encode(),
            capture_output=True,
            timeout=DOT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        logger.warning("Workflow graph not drawn: %s", type(error).__name__)
        return None
    if result.returncode != 0:
        logger.warning("Workflow graph not drawn: dot exited with %s", result.returncode)
        return None
    return result.stdout.decode("utf-8", "replace")


def graph_image(definition: dict | None, *, diff: dict | None = None) -> dict | None:
    """What a page needs to show the graph: ``{"src": data URI, "alt": text}``, or
    ``{"missing": True}`` when it cannot be drawn here; None for no definition."""
    if not isinstance(definition, dict):
        return None
    marks, removed = {}, []
    for change in (diff or {}).get("steps", []):
        if change.get("kind") in ("added", "changed"):
            marks[change["step"]] = change["kind"]
        elif change.get("kind") == "removed" and isinstance(change.get("before"), dict):
            removed.append(change["before"])
    svg = svg_of(definition_dot(definition, marks=marks, removed=tuple(removed)))
    if svg is None:
        return {"missing": True}
    steps = [step.get("id", "?") for step in definition.get("steps", []) if isinstance(step, dict)]
    alt = (
        f"Graph of the workflow: {len(steps)} step{'s' if len(steps) != 1 else ''} ({', '.join(steps[:20])})"
    )
    if marks or removed:
        alt += f"; {len([m for m in marks.values() if m == 'added'])} added, "
        alt += f"{len([m for m in marks.values() if m == 'changed'])} changed, {len(removed)} removed"
    return {"src": "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode(), "alt": alt + "."}
