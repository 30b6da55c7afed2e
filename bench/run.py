"""Run benchmarks: `python bench/run.py [NAME] [-- ARGS…]`; without NAME, all of them.

Each benchmark is a module `bench/<name>.py` whose last line on standard output is one JSON
object (the contract in ../shared/brief/engineering.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    names = argv or sorted(p.stem for p in HERE.glob("*.py") if p.stem not in {"run", "common"})
    failed = 0
    for name in names:
        path = HERE / f"{name}.py"
        if not path.is_file():
            print(f"no benchmark named [{name}] (looked for {path})", file=sys.stderr)
            return 2
        print(f"== bench {name}", file=sys.stderr, flush=True)
        command = [sys.executable, str(path), *extra]  # our own benchmark modules
        failed += subprocess.run(command, check=False).returncode != 0  # noqa: S603
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
