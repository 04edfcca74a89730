"""Size exact and cheap under TTL (no SCAN/KEYS/FLUSHDB), namespaces that never touch each
other, and repair after eviction or a manual DEL, against real servers, through both
flavours."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from fleetcache import LLMResponse, RedisExactCache
from fleetcache._store import Store
from fleetcache.core.instructions import Batch

from ..conftest import Backend
from ..support.flavors import CacheFactory, Flavor, req, response
from ..support.servers import ServerProc

FORBIDDEN = ("scan", "keys", "flushdb", "flushall", "randomkey")


def server_ms(r: Any) -> int:
    """The server clock in ms (on a cluster: any node; they share this machine's clock)."""
    t = r.time()
    if isinstance(t, dict):
        t = next(iter(t.values()))
    sec, usec = t
    return int(sec) * 1000 + int(usec) // 1000


def wait_server_time(r: Any, target_ms: int, timeout: float = 10.0) -> None:
    """Poll the SERVER clock (expiry uses it) until it reaches ``target_ms``."""
    deadline = time.monotonic() + timeout
    while server_ms(r) < target_ms:
        assert time.monotonic() < deadline, "server clock did not advance"
        time.sleep(0.02)


def command_calls(r: Any) -> dict[str, int]:
    """Calls per command, summed over every node the client talks to (INFO commandstats)."""
    info = r.info("commandstats")
    if any(str(k).startswith("cmdstat_") for k in info):
        per_node = [info]  # one server
    else:
        per_node = [v for v in info.values() if isinstance(v, dict)]  # cluster: node -> info
    out: dict[str, int] = {}
    for node in per_node:
        for key, value in node.items():
            if isinstance(value, dict) and "calls" in value:
                name = key.removeprefix("cmdstat_")
                out[name] = out.get(name, 0) + int(value["calls"])
    return out


# -- size exact under TTL ------------------------------------------------------------------


async def test_size_exact_under_ttl_without_touching(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory()
    await c.put(*req("keep"), response("keep"))  # no TTL
    await c.put(*req("long"), response("long"), ttl_seconds=60)
    for i in range(5):
        await c.put(*req(i), response(i), ttl_seconds=0.25)
    last_put = server_ms(r)  # every put's expiry is at most this + 250 ms (server clock)
    n = await c.size()
    assert 2 <= n <= 7  # the short ones may already be gone on a very slow machine
    wait_server_time(r, last_put + 251)
    # Nobody touched the expired entries: size() alone must stop counting them.
    assert await c.size() == 2
    assert (await c.stats()).size == 2
    assert (await c.fleet_stats()).size == 2


async def test_ttl_quarter_second_expires(cache_factory: CacheFactory, r: redis.Redis) -> None:
    c = cache_factory(ttl_seconds=0.25)
    await c.put(*req(1), response(1))
    entry = c.keys_of(*req(1))[0]
    assert r.pttl(entry) <= 250  # PX precision: not rounded down to 0 or up to 1 s
    wait_server_time(r, server_ms(r) + 251)
    assert await c.get(*req(1)) is None
    assert await c.size() == 0
    fs = await c.fleet_stats()
    assert fs.misses == 1
    assert fs.expired + fs.evicted <= 1  # the index member is gone, counted at most once


async def test_ttl_millisecond_precision(cache_factory: CacheFactory, r: redis.Redis) -> None:
    c = cache_factory(ttl_seconds=30.125)
    await c.put(*req(1), response(1))
    await c.put(*req(2), response(2), ttl_seconds=7.5)
    _, index, _ = c.keys_of(*req(1))
    e1, e2 = c.keys_of(*req(1))[0], c.keys_of(*req(2))[0]
    assert 25_000 < r.pttl(e1) <= 30_125
    assert 2_500 < r.pttl(e2) <= 7_500
    # The index score is the absolute expiry (server clock, ms), equal to the key's PXAT.
    score = r.zscore(index, c.digest_of(*req(1)))
    assert score is not None and int(score) == r.execute_command("PEXPIRETIME", e1)


async def test_no_ttl_means_no_expiry(cache: Flavor, r: redis.Redis) -> None:
    await cache.put(*req(1), response(1))
    entry, index, _ = cache.keys_of(*req(1))
    assert r.pttl(entry) == -1
    assert r.zscore(index, cache.digest_of(*req(1))) == float("inf")


async def test_no_scan_keys_or_flush_in_any_operation(
    cache_factory: CacheFactory, r: redis.Redis
) -> None:
    c = cache_factory(ttl_seconds=30)
    before = command_calls(r)
    for i in range(30):
        await c.put(*req(i), response(i))
    await c.put(*req("short"), response("short"), ttl_seconds=0.05)
    for i in range(40):
        await c.get(*req(i))
    await c.invalidate(*req(3))
    await c.invalidate(*req("absent"))
    entry = c.keys_of(*req(4))[0]
    r.set(entry, b"garbage")  # corrupt path (header check in Lua)
    await c.get(*req(4))
    r.delete(c.keys_of(*req(5))[0])  # eviction path
    await c.get(*req(5))
    await c.size()
    await c.stats()
    await c.fleet_stats()
    await c.reconcile()
    await c.reset_stats()
    await c.clear()
    await c.size()
    after = command_calls(r)
    assert after.get("evalsha", 0) > before.get("evalsha", 0)  # the workout did reach Redis
    for cmd in FORBIDDEN:
        assert after.get(cmd, 0) == before.get(cmd, 0), f"{cmd} was sent"


def _bulk_put(cache: RedisExactCache, n: int, batch: int = 20_000) -> None:
    """``n`` entries (no TTL) through the real cache code: ``put_many`` where it exists,
    else pipelined put-script calls through the core and the store."""
    resp = LLMResponse(content="x")
    put_many = getattr(cache, "put_many", None)
    if put_many is not None:
        for start in range(0, n, batch):
            put_many(
                [(f"q{i}", "", "m", 0.0, 1, resp) for i in range(start, min(n, start + batch))]
            )
        return
    core = cache._core
    payload = core.encode(resp, "0" * 32)  # unsigned cache: the digest is not used
    store = Store(cache.client)
    for start in range(0, n, batch):
        calls = []
        for i in range(start, min(n, start + batch)):
            _req, digest, shard = core.request((f"q{i}", "", "m", 0.0, 1))
            calls.append(core.put_call(digest, shard, payload, 0))
        store.batch(Batch(tuple(calls)))


@pytest.mark.slow
@pytest.mark.backends("redis")  # ~40 s a backend on 2 cores: one backend keeps `make test` sane
def test_million_entries_len_exact_and_clear_finishes(
    backend: Backend, prefix: str, r: redis.Redis
) -> None:
    n = 1_000_000
    cache = RedisExactCache(url=backend.url, key_prefix=prefix, socket_timeout=30)
    other = RedisExactCache(url=backend.url, key_prefix=prefix + ":x", socket_timeout=30)
    try:
        other.put(*req(1), response(1))
        before = command_calls(r)
        _bulk_put(cache, n)
        assert len(cache) == n
        assert cache.stats.size == n
        assert cache.fleet_stats().puts == n
        cache.clear()
        assert len(cache) == 0
        assert cache.fleet_stats().puts == 0
        _req, digest, shard = cache._core.request(("q7", "", "m", 0.0, 1))
        keys = cache._core.keys
        assert r.exists(keys.entry(shard, digest), keys.index(shard), keys.stats(shard)) == 0
        assert len(other) == 1 and other.get(*req(1)) == response(1)
        after = command_calls(r)
        for cmd in FORBIDDEN:
            assert after.get(cmd, 0) == before.get(cmd, 0), f"{cmd} was sent"
    finally:
        cache.close()
        other.close()


# -- namespaces never touch each other -----------------------------------------------------


async def test_clear_leaves_other_namespaces_alone(
    cache_factory: CacheFactory, r: redis.Redis, prefix: str
) -> None:
    p = cache_factory()
    px = cache_factory(key_prefix=prefix + ":x")
    p1 = cache_factory(key_prefix=prefix + ":0")  # looks like p's shard-0 hash tag
    for c in (p, px, p1):
        for i in range(3):
            await c.put(*req(i), response(i))
        await c.get(*req(0))
        await c.get(*req("miss"))
    unrelated = [f"{prefix}:other", f"{prefix}:x:e:1", f"{{{prefix}:0}}:zzz", f"{prefix}*"]
    for k in unrelated:
        r.set(k, b"keep me")

    await p.clear()

    assert await p.size() == 0
    for c in (px, p1):
        assert await c.size() == 3
        assert await c.get(*req(1)) == response(1)
        fs = await c.fleet_stats()
        assert (fs.hits, fs.misses, fs.puts) == (2, 1, 3)
    for k in unrelated:
        assert r.get(k) == b"keep me"
    await px.reset_stats()
    assert (await p1.fleet_stats()).hits == 2


# -- eviction / manual DEL -----------------------------------------------------------------


async def test_manual_del_repaired_by_get(cache: Flavor, r: redis.Redis) -> None:
    await cache.put(*req(1), response(1))
    await cache.put(*req(2), response(2))
    r.delete(cache.keys_of(*req(1))[0])
    assert await cache.size() == 2  # the index does not know yet
    assert await cache.get(*req(1)) is None
    assert await cache.size() == 1
    fs = await cache.fleet_stats()
    assert (fs.evicted, fs.expired, fs.misses) == (1, 0, 1)


async def test_reconcile_drops_vanished_entries(cache: Flavor, r: redis.Redis) -> None:
    n = 1_200  # more than one reconcile chunk
    for i in range(n):
        await cache.put(*req(i), response(i))
    gone = [cache.keys_of(*req(i))[0] for i in range(0, n, 3)]
    r.delete(*gone)
    assert await cache.size() == n
    assert await cache.reconcile() == len(gone)
    assert await cache.size() == n - len(gone)
    fs = await cache.fleet_stats()
    assert fs.evicted == len(gone)
    assert await cache.reconcile() == 0
    assert await cache.get(*req(1)) == response(1)


@pytest.mark.backends("redis", "valkey")
async def test_maxmemory_eviction_repaired(
    cache_factory: CacheFactory, private_server: Callable[..., ServerProc]
) -> None:
    """Real maxmemory eviction of entries: reconcile() makes size() exact again.

    ``volatile-*`` policies evict only keys with a TTL: the entries (given a TTL here), never
    the index or the counters, which have none. (Under ``allkeys-*`` Redis may evict the
    index itself; its members are then lost, and size() undercounts until entries are
    rewritten: a documented limitation.)"""
    srv = private_server("--maxmemory", "8mb", "--maxmemory-policy", "volatile-random")
    c = cache_factory(url=srv.url, compress_threshold=None, ttl_seconds=600)
    rnd = random.Random(7)
    n = 400
    for i in range(n):  # ~20 KB each: 8 MB holds a fraction of them
        body = rnd.randbytes(10_000).hex()
        await c.put(*req(i), LLMResponse(content=body))
    with srv.client() as raw:
        assert raw.info("stats")["evicted_keys"] > 0
        raw.config_set("maxmemory", "0")  # no more evictions (even reads can trigger them)
        removed = await c.reconcile()
        present = sum(raw.exists(c.keys_of(*req(i))[0]) for i in range(n))
    assert 0 < present < n
    assert await c.size() == present
    fs = await c.fleet_stats()
    assert removed == fs.evicted == n - present
    assert fs.puts == n
