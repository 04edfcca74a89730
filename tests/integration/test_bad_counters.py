"""Counters that another client overwrote with something that is not an integer:
``fleet_stats()`` skips and reports them (``bad_counters``), never raises; the
Prometheus collector still serves every other sample of the scrape."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from fleetcache import RedisExactCache
from fleetcache.core import models

from ..support.flavors import CacheFactory, req, response

HOSTILE = {
    "hits": b"abc",
    "misses": b"1.5",
    "puts": b"\xff\xfe garbage",
    "mh:gpt-test": b"1e3",
    "mm:gpt-test": b"7",  # a valid one among them
}


async def test_fleet_stats_skips_and_reports_bad_counters(
    cache_factory: CacheFactory, r: Any, caplog: pytest.LogCaptureFixture
) -> None:
    c = cache_factory()
    await c.put(*req(1), response(1, tokens=30))
    assert await c.get(*req(1)) is not None  # hits 1, tokens 30
    key = next(k for k in _stats_keys(c) if r.hget(k, "puts") is not None)
    r.hset(key, mapping=HOSTILE)
    models._LOGGED.clear()  # logged once per field name per process
    with caplog.at_level(logging.WARNING, logger="fleetcache"):
        fs = await c.fleet_stats()
    assert (fs.hits, fs.misses, fs.puts) == (0, 0, 0)  # the bad ones are skipped...
    assert fs.tokens_saved == 30 and fs.size == 1  # ...the rest is exact
    assert (fs.by_model["gpt-test"].hits, fs.by_model["gpt-test"].misses) == (0, 7)
    assert sorted(fs.bad_counters) == sorted(
        ["hits='abc'", "misses='1.5'", "puts='\\udcff\\udcfe garbage'", "mh:gpt-test='1e3'"]
    )
    assert sum("not an integer" in rec.getMessage() for rec in caplog.records) == 4
    caplog.clear()
    again = await c.fleet_stats()
    assert len(again.bad_counters) == 4
    assert not any("not an integer" in rec.getMessage() for rec in caplog.records)  # once
    st = await c.stats()
    assert (st.hits, st.misses, st.size) == (0, 0, 1)
    assert await c.get(*req(1)) is not None  # the data path is unaffected


def _stats_keys(c: Any) -> list[str]:
    keys = c.cache._core.keys
    return [keys.stats(i) for i in range(keys.shards)]


@pytest.mark.backends("redis")
def test_collector_serves_the_rest_of_the_scrape(
    make_cache: Callable[..., RedisExactCache], r: Any, prefix: str
) -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from fleetcache.metrics import FleetCacheCollector

    cache = make_cache()
    cache.put(*req(1), response(1, tokens=30))
    assert cache.get(*req(1)) is not None
    r.hset(f"{{{prefix}:0}}:s", mapping=HOSTILE)
    reg = CollectorRegistry()
    reg.register(FleetCacheCollector(cache))
    samples = {
        (s.name, s.labels.get("namespace")): s.value
        for fam in text_string_to_metric_families(generate_latest(reg).decode())
        for s in fam.samples
    }
    assert samples[("fleetcache_up", prefix)] == 1
    assert samples[("fleetcache_tokens_saved_total", prefix)] == 30
    assert samples[("fleetcache_entries", prefix)] == 1
    assert samples[("fleetcache_hits_total", prefix)] == 0  # skipped, not a failed scrape
    assert samples[("fleetcache_bad_counters", prefix)] == 4
