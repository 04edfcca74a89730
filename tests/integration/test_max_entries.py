"""Bounded namespaces (``max_entries=N``): recorded in the layout like ``shards``; every put
script (put, put_many, put_release) keeps the live size <= N atomically, evicting soonest to
expire first, then (no TTL) oldest write first, never the entry being written, counted as
``evicted``. 8 writer processes never push the size past the cap (a reader checks all along),
``len()`` stays exact and ``puts - evicted == size``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from fleetcache import AsyncRedisExactCache, LayoutMismatchError, RedisExactCache
from fleetcache._admin import open_namespace
from fleetcache.core.keys import KeySpace, digest_of
from fleetcache.core.ops import shard_caps

from ..support.cap_worker import fields
from ..support.flavors import CacheFactory, req, response


def test_validation() -> None:
    cases: list[tuple[Any, type[Exception]]] = [
        ("10", TypeError), (1.5, TypeError), (True, TypeError), (0, ValueError),
        (-3, ValueError), (2**32, ValueError),
    ]  # fmt: skip
    for bad, exc in cases:
        with pytest.raises(exc):
            RedisExactCache(url="redis://127.0.0.1:1/0", max_entries=bad)
        with pytest.raises(exc):
            AsyncRedisExactCache(url="redis://127.0.0.1:1/0", max_entries=bad)
    with pytest.raises(ValueError, match="shards"):
        RedisExactCache(url="redis://127.0.0.1:1/0", shards=4, max_entries=3)
    assert shard_caps(10, 3) == (4, 3, 3) and sum(shard_caps(1001, 64)) == 1001
    assert shard_caps(None, 2) == (0, 0)


async def test_cap_is_recorded_in_the_layout(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory(max_entries=10)
    await c.put(*req(1), response(1))
    meta = KeySpace(c.cache.key_prefix).meta
    assert r.get(meta).endswith(b";max_entries=10")
    for kw in ({"max_entries": 11}, {"max_entries": None}):
        other = cache_factory(on_error="raise", **kw)
        with pytest.raises(LayoutMismatchError, match="max_entries"):
            await other.get(*req(1))
    uncapped = cache_factory(key_prefix=c.cache.key_prefix + ":u")
    await uncapped.put(*req(1), response(1))
    capped_later = cache_factory(
        key_prefix=c.cache.key_prefix + ":u", max_entries=5, on_error="raise"
    )
    with pytest.raises(LayoutMismatchError):
        await capped_later.put(*req(2), response(2))
    lenient = cache_factory(key_prefix=c.cache.key_prefix + ":u", max_entries=5)
    await lenient.put(*req(2), response(2))  # "miss": a counted, logged fault, not raised
    assert lenient.cache.error_count == 1
    if not c.is_async:  # the operator tools open a capped namespace with its recorded cap
        with open_namespace(c.cache._url, c.cache.key_prefix) as op:
            assert op.max_entries == 10 and len(op) == 1


async def test_eviction_order(cache_factory: CacheFactory, r: Any) -> None:
    """Soonest to expire first; then entries without TTL, oldest write first; a re-put counts
    as a new write; the entry being written is never the one evicted."""
    c = cache_factory(max_entries=5, shards=1)
    await c.put(*req(1), response(1), ttl_seconds=100)
    await c.put(*req(2), response(2), ttl_seconds=50)
    await c.put(*req(3), response(3))
    time.sleep(0.002)
    await c.put(*req(4), response(4))
    await c.put(*req(5), response(5), ttl_seconds=200)

    async def present() -> set[int]:
        got = await c.get_many([req(i) for i in range(1, 20)])
        return {i + 1 for i, g in enumerate(got) if g is not None}

    time.sleep(0.002)
    await c.put(*req(6), response(6))  # full: the soonest to expire (2, 50 s) goes
    assert await present() == {1, 3, 4, 5, 6}
    await c.put(*req(7), response(7), ttl_seconds=300)  # then 1 (100 s)
    assert await present() == {3, 4, 5, 6, 7}
    await c.put(*req(8), response(8), ttl_seconds=1)  # the new one expires first: kept
    assert await present() == {3, 4, 6, 7, 8}  # 5 (200 s) went
    time.sleep(0.002)
    await c.put(*req(4), response(4))  # re-put: 4 is now the newest no-TTL entry
    await c.put(*req(9), response(9), ttl_seconds=400)  # evicts 8 (1 s), soonest
    assert await present() == {3, 4, 6, 7, 9}
    await c.put(*req(10), response(10), ttl_seconds=400)  # then 7 (300 s)
    assert await present() == {3, 4, 6, 9, 10}
    # TTL'd entries keep evicting each other while older ones are there: the entries
    # without TTL expire last, so they go last
    for i in range(11, 16):
        await c.put(*req(i), response(i), ttl_seconds=400)
        got = await present()
        assert {3, 4, 6, i} <= got and len(got) == 5
    fs = await c.fleet_stats()
    assert fs.size == 5 and fs.evicted == 10 and fs.puts == 16  # one put replaced (4)


async def test_oldest_write_first_without_ttl(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory(max_entries=3, shards=1)
    for i in (1, 2, 3):
        await c.put(*req(i), response(i))
        time.sleep(0.003)  # scores are write times in ms
    await c.put(*req(4), response(4))  # evicts 1, the oldest
    time.sleep(0.003)
    await c.put(*req(2), response(2))  # re-put: 2 becomes the newest
    time.sleep(0.003)
    await c.put(*req(5), response(5))  # evicts 3 (now the oldest)
    time.sleep(0.003)
    await c.put(*req(6), response(6))  # evicts 4
    got = await c.get_many([req(i) for i in range(1, 7)])
    assert [g is not None for g in got] == [False, True, False, False, True, True]
    fs = await c.fleet_stats()
    assert (fs.size, fs.evicted, fs.puts) == (3, 3, 7)


async def test_put_many_and_single_flight_respect_the_cap(
    cache_factory: CacheFactory, r: Any
) -> None:
    c = cache_factory(max_entries=5, shards=1)
    await c.put_many([(*req(i), response(i)) for i in range(8)])  # one call, more than N
    assert await c.size() == 5
    await c.put_many([(*req(i), response(i)) for i in range(100, 103)])  # 3 fresh ones kept
    got = await c.get_many([req(i) for i in range(100, 103)])
    assert all(g is not None for g in got)

    def compute() -> Any:
        return response(200)

    async def acompute() -> Any:
        return compute()

    assert await c.get_or_compute(*req(200), acompute if c.is_async else compute) == response(200)
    assert await c.get(*req(200)) == response(200)  # the put_release entry was kept
    fs = await c.fleet_stats()
    assert fs.size == 5 and fs.puts == 12 and fs.evicted == 7


async def test_cap_is_split_over_shards(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory(max_entries=10, shards=3)
    for start in range(0, 60, 6):
        await c.put_many([(*req(i), response(i)) for i in range(start, start + 6)])
        await c.put(*req(1000 + start), response(start))
    ks = KeySpace(c.cache.key_prefix, 3)
    per_shard = [r.zcard(ks.index(s)) for s in range(3)]
    assert per_shard == [4, 3, 3] == list(shard_caps(10, 3))
    fs = await c.fleet_stats()
    assert fs.size == 10 == await c.size()
    assert fs.puts - fs.evicted == fs.size == 10
    # nothing evicted is left behind in Redis
    digests = [digest_of(req(i)) for i in range(60)]
    digests += [digest_of(req(1000 + i)) for i in range(0, 60, 6)]
    assert sum(r.exists(ks.entry(ks.shard_of(d), d)) for d in digests) == 10


async def test_without_a_cap_nothing_changes(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory()
    for i in range(20):
        await c.put(*req(i), response(i))
    assert await c.size() == 20 and (await c.fleet_stats()).evicted == 0
    _, index, _ = c.keys_of(*req(1))
    assert r.zscore(index, c.digest_of(*req(1))) == float("inf")
    assert not r.get(KeySpace(c.cache.key_prefix).meta).endswith(b"max_entries=0")


@pytest.mark.backends("redis", "valkey")
def test_eight_writers_never_exceed_the_cap(backend: Any, prefix: str, r: Any) -> None:
    cap, shards, per_worker, workers = 300, 3, 400, 8
    caps = shard_caps(cap, shards)
    ks = KeySpace(prefix, shards)
    with RedisExactCache(url=backend.url, key_prefix=prefix, shards=shards, max_entries=cap) as c:
        c.reset_stats()  # records the layout
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.cap_worker",
                    backend.url,
                    prefix,
                    str(shards),
                    str(cap),
                    str(w),
                    str(per_worker),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for w in range(workers)
        ]
        seen: list[int] = []
        over: list[tuple[int, ...]] = []
        stop = threading.Event()

        def watch() -> None:
            with RedisExactCache(url=backend.url, key_prefix=prefix, shards=shards,
                                 max_entries=cap, on_error="raise") as reader:  # fmt: skip
                while not stop.is_set():
                    n = len(reader)
                    seen.append(n)
                    # each shard's index, read in one round trip (no TTL: ZCARD = live)
                    pipe = r.pipeline(transaction=False)
                    for s in range(shards):
                        pipe.zcard(ks.index(s))
                    sizes = tuple(int(x) for x in pipe.execute())
                    if n > cap or any(z > k for z, k in zip(sizes, caps)):
                        over.append((n, *sizes))

        t = threading.Thread(target=watch)
        t.start()
        time.sleep(0.2)
        r.set(f"{prefix}:go", 1)
        results = []
        try:
            for p in procs:
                out, _ = p.communicate(timeout=240)
                assert p.returncode == 0
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            stop.set()
            t.join()
            r.delete(f"{prefix}:go")
        assert sum(x["errors"] for x in results) == 0
        issued = sum(x["puts"] for x in results)
        assert issued == workers * per_worker
        assert not over, over[:5]
        assert len(seen) > 20 and max(seen) <= cap and max(seen) > cap // 2
        fs = c.fleet_stats()
        assert len(c) == fs.size == cap  # full, exact
        assert fs.puts == issued
        assert fs.puts - fs.evicted == fs.size  # every eviction counted exactly once
        # the entries really in Redis are exactly the indexed ones
        digests = [digest_of(fields(w, i)) for w in range(workers) for i in range(per_worker)]
        pipe = r.pipeline(transaction=False)
        for d in digests:
            pipe.exists(ks.entry(ks.shard_of(d), d))
        assert sum(pipe.execute()) == cap
        c.clear()
