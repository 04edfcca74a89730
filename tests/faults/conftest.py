"""Fixtures of the fault-injection suite: a private server per scenario (never the shared
session server: these scenarios kill, stall and overfill it) and a recorder whose figures
(operations issued, failures seen, data lost) end up in ``bench/faults-summary.json`` when
``make faults`` runs the suite; ``python bench/run.py --render`` folds them into
``bench/RESULTS.md``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support.servers import ServerProc, redis_server_bin, servers_of

#: Where the figures go: the file FLEETCACHE_FAULTS_SUMMARY names (``make faults`` sets it
#: to ``bench/faults-summary.json``); unset or empty, nothing is written, so that a plain
#: ``make test`` leaves the tracked results alone.
SUMMARY = os.environ.get("FLEETCACHE_FAULTS_SUMMARY", "")
#: Soak duration in seconds: FLEETCACHE_SOAK_SECONDS (12 s by default so that ``make test``
#: stays fast; the issue's full soak is 60 s: FLEETCACHE_SOAK_SECONDS=60 pytest -m faults).
SOAK_SECONDS = float(os.environ.get("FLEETCACHE_SOAK_SECONDS", "12"))

_records: list[dict[str, Any]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.stash[_OUTCOME] = rep.outcome


_OUTCOME = pytest.StashKey[str]()


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ServerProc]]:
    """Start private servers (``extra`` = redis-server arguments); all stopped by PID."""
    binary = redis_server_bin()
    if binary is None:
        pytest.exit("redis-server not found (apt-get install redis-server)", returncode=3)
    with servers_of(binary) as start:
        yield start


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A dict the scenario fills (name, invariant, operations, failures, data_lost)."""
    rec: dict[str, Any] = {"operations": 0, "failures": 0, "data_lost": 0}
    yield rec
    if "name" not in rec:
        return
    rec["result"] = request.node.stash.get(_OUTCOME, "error")
    _records.append(rec)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _records or not SUMMARY:
        return
    path = Path(SUMMARY)
    old: dict[str, Any] = {}
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    by_name = {s["name"]: s for s in old.get("scenarios", [])}
    for rec in _records:
        by_name[rec["name"]] = rec
    out = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "soak_seconds": SOAK_SECONDS,
        "scenarios": sorted(by_name.values(), key=lambda s: s["name"]),
    }
    try:
        path.write_text(json.dumps(out, indent=1) + "\n")
    except OSError:  # read-only checkout: the tests still count
        pass
