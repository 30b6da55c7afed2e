"""The OpenAPI document of terugkeer's API, as the code makes it: ``python -m tools.openapi``
prints it, ``python -m tools.openapi --write`` writes ``docs/api/openapi.json`` (the committed
contract, linted by ``make lint`` against the API Design Rules; docs/api.md).

A test (tests/web/test_contract.py) fails when the committed document and the code's differ:
after changing a route, run ``python -m tools.openapi --write`` and commit the result.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "api" / "openapi.json"
COMMAND = "python -m tools.openapi --write"


def document() -> dict[str, Any]:
    """The document the app serves at /api/v1/openapi.json (no database is opened)."""
    # the document does not depend on the environment; the app only refuses to guess it
    os.environ["TERUGKEER_ENVIRONMENT"] = "development"
    from sqlalchemy import create_engine

    from terugkeer.web.app import create_app

    engine = create_engine("sqlite://")
    try:
        return create_app(engine).openapi()
    finally:
        engine.dispose()


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render(document())
    if argv == ["--write"]:
        COMMITTED.parent.mkdir(parents=True, exist_ok=True)
        COMMITTED.write_text(text, encoding="utf-8")
        print(f"wrote {COMMITTED.relative_to(ROOT)}", file=sys.stderr)
        return 0
    if argv:
        print("usage: python -m tools.openapi [--write]", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
