"""Development tools: run from the repository root (``python -m tools.<name>``), used by the
tests and the benchmarks; not part of the installed product."""
