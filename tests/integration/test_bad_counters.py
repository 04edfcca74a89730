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
    "m:gpt-test": b"\x00" * 79,  # a savings record one byte short
    "mm:gpt-test": b"7",  # a valid one among them
}
BAD = ["hits='abc'", "misses='1.5'", "puts='\\udcff\\udcfe garbage'", "mh:gpt-test='1e3'"]
BAD.append("m:gpt-test=" + repr("\x00" * 40))


async def test_fleet_stats_skips_and_reports_bad_counters(
    cache_factory: CacheFactory, r: Any, caplog: pytest.LogCaptureFixture
) -> None:
    c = cache_factory(shards=1)
    await c.put(*req(1), response(1, tokens=30))
    await c.put(*req(2, model="other"), response(2, tokens=20))
    assert await c.get(*req(1)) is not None  # gpt-test: hits 1, tokens 30
    assert await c.get(*req(2, model="other")) is not None  # other: hits 1, tokens 20
    key = _stats_keys(c)[0]
    r.hset(key, mapping=HOSTILE)
    models._LOGGED.clear()  # logged once per field name per process
    with caplog.at_level(logging.WARNING, logger="fleetcache"):
        fs = await c.fleet_stats()
    assert (fs.hits, fs.misses, fs.puts) == (1, 0, 0)  # the bad ones are skipped...
    assert fs.tokens_saved == 20 and fs.size == 2  # ...the rest (other's record) is exact
    assert (fs.by_model["gpt-test"].hits, fs.by_model["gpt-test"].misses) == (0, 7)
    assert fs.by_model["other"].hits == 1 and fs.by_model["other"].input_tokens_saved == 10
    assert sorted(fs.bad_counters) == sorted(BAD)
    assert sum("not an integer" in rec.getMessage() for rec in caplog.records) == 5
    caplog.clear()
    again = await c.fleet_stats()
    assert len(again.bad_counters) == 5
    assert not any("not an integer" in rec.getMessage() for rec in caplog.records)  # once
    st = await c.stats()
    assert (st.hits, st.misses, st.size) == (1, 0, 2)
    assert await c.get(*req(1)) is not None  # the data path is unaffected...
    after = await c.fleet_stats()  # ...and the broken record is left for the operator, while
    assert r.hget(key, "m:gpt-test") == b"\x00" * 79  # its model's savings go to the
    assert after.tokens_saved == 20 + 30  # integer fields (hits/mh: hold garbage: skipped)
    assert after.by_model["gpt-test"].input_tokens_saved == 20


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
    cache.put(*req(2, model="other"), response(2, tokens=20))
    assert cache.get(*req(2, model="other")) is not None
    r.hset(f"{{{prefix}:0}}:s", mapping=HOSTILE)
    reg = CollectorRegistry()
    reg.register(FleetCacheCollector(cache))
    samples = {
        (s.name, s.labels.get("namespace")): s.value
        for fam in text_string_to_metric_families(generate_latest(reg).decode())
        for s in fam.samples
    }
    assert samples[("fleetcache_up", prefix)] == 1
    assert samples[("fleetcache_tokens_saved_total", prefix)] == 20  # other's record
    assert samples[("fleetcache_entries", prefix)] == 2
    assert samples[("fleetcache_hits_total", prefix)] == 1  # skipped, not a failed scrape
    assert samples[("fleetcache_bad_counters", prefix)] == 5
