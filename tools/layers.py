"""The package-level import graph of ``terugkeer``, as a Mermaid diagram, from the code itself.

``python -m tools.layers`` prints it; ``docs/architecture.md`` embeds it between the markers
below, and a test (tests/tools/test_layers.py) checks that the two agree, so the picture of the
layers cannot drift from the code. The contracts that keep the layers one-way are
import-linter's, in ``pyproject.toml`` (run by ``make lint``).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "terugkeer"
BEGIN = "<!-- layers:begin (python -m tools.layers) -->"
END = "<!-- layers:end -->"
# Top to bottom, as in the import-linter contract.
LAYERS = (
    ("faces", ("cli",)),
    ("faces2", ("web", "demo")),
    ("costbenefit", ("mkba",)),
    ("monitoring", ("monitor",)),
    ("orchestration", ("intake", "synth", "migrations")),
    ("capabilities", ("notify", "reintegration")),
    ("detention", ("detention",)),
    ("security", ("security",)),
    ("db", ("db",)),
    ("foundation", ("logs", "domain", "config")),
)


def _package(path: Path) -> str | None:
    rel = path.relative_to(ROOT).parts
    name = rel[0].removesuffix(".py")
    return None if name.startswith("__") else name


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        if node.module == "terugkeer":
            return [a.name for a in node.names]
        if node.module.startswith("terugkeer."):
            return [node.module.split(".")[1]]
    if isinstance(node, ast.Import):
        return [a.name.split(".")[1] for a in node.names if a.name.startswith("terugkeer.")]
    return []


def edges(root: Path = ROOT) -> dict[str, set[str]]:
    """Which top-level packages of terugkeer import which (modules at the root count as
    packages; the root package itself is left out)."""
    known = {name for _, names in LAYERS for name in names}
    out: dict[str, set[str]] = defaultdict(set)
    for path in sorted(root.rglob("*.py")):
        source = _package(path)
        if source not in known:
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            for target in _imported(node):
                if target in known and target != source:
                    out[source].add(target)
    return out


def mermaid(root: Path = ROOT) -> str:
    lines = ["```mermaid", "flowchart TD"]
    for layer, names in LAYERS:
        lines.append(f'  subgraph {layer}[" "]')
        lines.extend(f"    {name}" for name in names)
        lines.append("  end")
    graph = edges(root)
    for source in sorted(graph):
        lines.extend(f"  {source} --> {target}" for target in sorted(graph[source]))
    lines.append("```")
    return "\n".join(lines)


def embedded(doc: str) -> str:
    """The diagram between the markers of a document."""
    start = doc.index(BEGIN) + len(BEGIN)
    return doc[start : doc.index(END)].strip()


if __name__ == "__main__":
    sys.stdout.write(mermaid() + "\n")
