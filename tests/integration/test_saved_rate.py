"""``saved_rate``: the fraction of gets that did not reach the upstream (hits, plus callers
served by another caller's single-flight computation), beside ``hit_rate``, in
``fleet_stats()``, ``fleetcache stats`` (table and ``--json``) and Prometheus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from fleetcache import RedisExactCache

from ..support.flavors import req, response

N = 8


@pytest.mark.backends("redis")
def test_crowd_saved_rate_counts_the_coalesced_waiters(
    make_cache: Callable[..., RedisExactCache], backend: Any, prefix: str
) -> None:
    """N callers (each its own cache object and connection pool, as N processes would be)
    ask for one request at once: one computes, N-1 wait and are served its answer. The
    compute holds until all N first looks are counted, so the numbers are exact: hits 0,
    misses N, coalesced N-1, hit rate 0, saved rate (N-1)/N."""
    caches = [make_cache() for _ in range(N)]
    computes: list[int] = []

    def compute() -> Any:
        computes.append(1)
        deadline = time.monotonic() + 30
        while caches[0].fleet_stats().misses < N:  # every caller has had its first look
            assert time.monotonic() < deadline, caches[0].fleet_stats()
            time.sleep(0.01)
        return response("once")

    results: list[Any] = [None] * N
    start = threading.Barrier(N)

    def caller(i: int) -> None:
        start.wait()
        results[i] = caches[i].get_or_compute(*req(1), compute, wait_timeout=60)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert results == [response("once")] * N and len(computes) == 1
    fs = caches[0].fleet_stats()
    assert (fs.hits, fs.misses, fs.coalesced, fs.puts) == (0, N, N - 1, 1)
    assert fs.hit_rate == 0.0
    assert fs.saved == N - 1
    assert fs.saved_rate == pytest.approx((N - 1) / N)

    assert caches[0].get(*req(1)) == response("once")  # one plain hit: 2 more numbers move
    fs = caches[0].fleet_stats()
    assert (fs.hits, fs.misses, fs.coalesced) == (1, N, N - 1)
    assert fs.saved_rate == pytest.approx(N / (N + 1))
    assert fs.hit_rate == pytest.approx(1 / (N + 1))

    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    base = [sys.executable, "-m", "fleetcache", "stats", "--url", backend.url, "--prefix", prefix]
    p = subprocess.run([*base, "--json"], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    body = json.loads(p.stdout)
    assert body["saved_rate"] == round(N / (N + 1), 6)
    assert (body["hits"], body["misses"], body["coalesced"]) == (1, N, N - 1)
    p = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    assert f"{N / (N + 1):.1%}" in next(ln for ln in p.stdout.splitlines() if "saved rate" in ln)

    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from fleetcache.metrics import FleetCacheCollector

    reg = CollectorRegistry()
    reg.register(FleetCacheCollector(caches[0]))
    samples = {
        s.name: s.value
        for fam in text_string_to_metric_families(generate_latest(reg).decode())
        for s in fam.samples
    }
    assert samples["fleetcache_saved_rate"] == pytest.approx(N / (N + 1))
    assert samples["fleetcache_coalesced_total"] == N - 1


def test_saved_rate_is_zero_without_gets(make_cache: Callable[..., RedisExactCache]) -> None:
    fs = make_cache().fleet_stats()
    assert (fs.saved, fs.saved_rate, fs.hit_rate) == (0, 0.0, 0.0)
