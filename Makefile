# terugkeer — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
BENCH ?=
BENCH_ARGS ?=
DRILL_ARGS ?=
# the API Design Rules' linter (Logius), used as it is from the shared reference (docs/api.md)
# The Logius ruleset is used from where the reference material lies (not copied: its README)
ADR_RULESET ?= $(firstword $(wildcard ../shared/reference/adr-linter.yaml /work/shared/reference/adr-linter.yaml) ../shared/reference/adr-linter.yaml)

.PHONY: demo test test-postgres bench drill serve lint lock clean browser

# Front-end tools and assets, pinned in package-lock.json (no download addresses recorded:
# .npmrc sets omit-lockfile-registry-resolved). Node.js and npm come from Debian if missing.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { \
	  echo "npm missing: installing nodejs and npm with apt-get"; \
	  (apt-get update -qq && apt-get install -y -qq nodejs npm) >/dev/null; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

# The browser tests drive Debian's Chromium; nothing downloads a browser of its own.
browser:
	@command -v chromium >/dev/null || { \
	  echo "chromium missing: installing it with apt-get"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }

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

test: $(STAMP) $(NODE_STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r src
	$(BIN)/lint-imports --no-cache
	npx --no-install spectral lint --fail-severity=error -r $(ADR_RULESET) docs/api/openapi.json

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
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
