"""The picture of the layers in docs/architecture.md is the one the code gives."""

from __future__ import annotations

from pathlib import Path

from tools.layers import edges, embedded, mermaid

DOC = Path(__file__).parents[2] / "docs" / "architecture.md"


def test_the_documented_layers_are_the_code_s() -> None:
    assert embedded(DOC.read_text("utf-8")) == mermaid(), "run: python -m tools.layers"


def test_the_graph_has_no_upward_edge() -> None:
    """A second look beside import-linter: nothing below the faces imports them."""
    graph = edges()
    for source, targets in graph.items():
        if source not in ("cli",):
            assert "cli" not in targets, source
        if source not in ("cli", "web", "demo"):
            assert not targets & {"web", "demo"}, source
    assert "detention" not in graph.get("security", set())
    assert not graph.get("domain")
