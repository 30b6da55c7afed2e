"""The README's pictures of the portal, taken by the browser tests themselves.

``python -m tools.screenshots`` runs the browser tests (tests/browser) on SQLite with
``TERUGKEER_README_SCREENSHOTS`` set: every page a walk checks with a ``readme`` name is also
saved as ``docs/screenshots/<name>.png`` (the browser's viewport, 1280 x 800). The pictures show
synthetic data only. Extra arguments go to pytest, e.g. ``-k mayor``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "screenshots"


def main(argv: list[str]) -> int:
    TARGET.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TERUGKEER_README_SCREENSHOTS=str(TARGET))
    env.setdefault("TERUGKEER_ENVIRONMENT", "development")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/browser",
        "-k",
        "sqlite",
        *argv,
    ]
    code = subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603 (our own interpreter)
    names = sorted(p.name for p in TARGET.glob("*.png"))
    print(f"{len(names)} screenshots in {TARGET.relative_to(ROOT)}: {', '.join(names)}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
