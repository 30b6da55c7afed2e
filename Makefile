# terugkeer — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH ?=
BENCH_ARGS ?=
DRILL_ARGS ?=

.PHONY: demo test test-postgres bench drill serve lint lock clean

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || PYTHON=python3; \
	if [ ! -x $(BIN)/python ]; then \
	  $(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	    echo "python venv support missing: installing python3-venv with apt-get"; \
	    rm -rf $(VENV); \
	    (apt-get update -qq && apt-get install -y -qq python3-venv) >/dev/null; \
	    $(PYTHON) -m venv $(VENV); }; \
	fi
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/terugkeer demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r src
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH) -- $(BENCH_ARGS)

# The fault drill (tools/drill, docs/drill.md), e.g. make drill DRILL_ARGS="--quick --seed 1"
drill: $(STAMP)
	$(BIN)/python -m tools.drill $(DRILL_ARGS)

serve: $(STAMP)
	$(BIN)/terugkeer serve

# Regenerate the hashed lock file (needs `uv`; no download addresses are written).
lock:
	uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
