"""Sentinel: a primary, a replica and a sentinel on loopback. The primary is killed (-9)
mid-run; after the failover the same cache object keeps working (scripts reload on the new
primary by NOSCRIPT) and serves the entries written before the kill."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.sentinel import Sentinel

from fleetcache import AsyncRedisExactCache, RedisExactCache
from fleetcache._clients import parse_sentinel_url
from fleetcache._scripts import script

from ..support.cluster import SentinelSet
from ..support.flavors import req, response
from ..support.servers import redis_server_bin

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    """A fresh primary + replica + sentinel (the failover test kills the primary)."""
    binary = redis_server_bin()
    if binary is None:
        pytest.skip("redis-server not found")
    s = SentinelSet(binary).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def sentinel_quick() -> Iterator[SentinelSet]:
    """Shared by the URL tests, which never kill anything (no wait for replica discovery)."""
    binary = redis_server_bin()
    if binary is None:
        pytest.skip("redis-server not found")
    s = SentinelSet(binary).start(wait_discovery=False)
    yield s
    s.stop()


def _url(s: SentinelSet) -> str:
    assert s.sentinel is not None
    return f"redis+sentinel://127.0.0.1:{s.sentinel.port}/{s.name}"


def _wait_for(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def test_failover_keeps_the_same_cache_object_working(sentinel_set: SentinelSet) -> None:
    s = sentinel_set
    assert s.sentinel is not None and s.primary is not None and s.replica is not None
    sentinel = Sentinel(
        [("127.0.0.1", s.sentinel.port)], socket_timeout=1, sentinel_kwargs={"socket_timeout": 1}
    )
    client = sentinel.master_for(s.name, socket_timeout=0.5, socket_connect_timeout=0.5)
    cache = RedisExactCache(client=client, key_prefix="t:failover", breaker_seconds=0.1)
    for i in range(50):
        cache.put(*req(i), response(i, tokens=10))
    for i in range(10):
        assert cache.get(*req(i)) == response(i, tokens=10)
    # every write reached the replica before the kill (WAIT only covers the writes of its
    # own connection, and the cache's pool has several: compare replication offsets)
    with s.primary.client() as prim, s.replica.client() as rep:
        target = int(prim.info("replication")["master_repl_offset"])
        _wait_for(
            lambda: int(rep.info("replication")["slave_repl_offset"]) >= target,
            10,
            "the replica to catch up",
        )
    with s.replica.client() as rep:
        assert rep.script_exists(script("get").sha) == [False]  # scripts are not replicated
    old_port = s.primary.port

    s.primary.kill()  # kill -9 by PID, mid-run

    errors_before = cache.error_count
    # keep calling while the sentinel notices and promotes the replica: misses, never raises
    deadline = time.monotonic() + 30
    served = None
    for _ in range(10_000):
        if time.monotonic() > deadline:
            break
        served = cache.get(*req(0))
        if served is not None:
            break
        time.sleep(0.05)
    assert served == response(0, tokens=10), "no failover within 30 s"
    assert s.primary_port() == s.replica.port != old_port
    assert cache.error_count > errors_before  # the outage was seen and served as misses

    # the same object, no restart: every entry written before the kill is served
    for i in range(50):
        assert cache.get(*req(i)) == response(i, tokens=10)
    cache.put(*req("after"), response("after"))
    assert cache.get(*req("after")) == response("after")
    st = cache.fleet_stats()
    assert st.size == 51
    assert st.puts == 51
    assert st.hits >= 10 + 50 + 1  # hits before the kill were replicated with the entries
    with s.replica.client() as new_primary:
        assert new_primary.script_exists(script("get").sha) == [True]  # reloaded by NOSCRIPT
    cache.close()
    client.close()


def test_sentinel_url_form(sentinel_quick: SentinelSet) -> None:
    s = sentinel_quick
    with RedisExactCache(url=_url(s), key_prefix="t:sentinel-url") as cache:
        assert isinstance(cache.client, redis.Redis)
        cache.put(*req(1), response(1))
        assert cache.get(*req(1)) == response(1)
        assert s.primary is not None
        with s.primary.client() as c:
            assert c.exists("{t:sentinel-url:0}:i") == 1  # written on the sentinel's primary


async def test_async_sentinel_url_form(sentinel_quick: SentinelSet) -> None:
    cache = AsyncRedisExactCache(url=_url(sentinel_quick), key_prefix="t:sentinel-aurl")
    try:
        await cache.put(*req(1), response(1))
        assert await cache.get(*req(1)) == response(1)
        assert await cache.size() == 1
    finally:
        await cache.aclose()


def test_parse_sentinel_url() -> None:
    p = parse_sentinel_url("redis+sentinel://u:p%40ss@s1.invalid:26380,[::1],h2/mymaster/3")
    assert p["hosts"] == [("s1.invalid", 26380), ("::1", 26379), ("h2", 26379)]
    assert (p["service"], p["db"], p["ssl"]) == ("mymaster", 3, False)
    assert (p["username"], p["password"]) == ("u", "p@ss")
    assert parse_sentinel_url("rediss+sentinel://h:1/m")["ssl"] is True
    for bad in ("redis+sentinel://h:1", "redis+sentinel:///m", "redis+sentinel://h:x/m"):
        with pytest.raises(ValueError):
            parse_sentinel_url(bad)
