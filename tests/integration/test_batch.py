"""Batch calls ``get_many``/``put_many``, through both the sync and the async cache: request
order, duplicates, batches over 1,000 requests, exact counters and size, corrupt entries,
input checks before any I/O, the error policy, and one round trip per call (counted by a
thin wrapper around the real client and by the server's own INFO commandstats)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from fleetcache import AsyncRedisExactCache, CacheUnavailableError, LLMResponse
from fleetcache.core.batch import BATCH_CHUNK
from fleetcache.errors import EntryTooLargeError

from ..support.flavors import CacheFactory, Flavor, req, response
from ..support.servers import free_port

# -- a counting wrapper around a real client (sync or async): it forwards every call -------


class _CountingPipeline:
    def __init__(self, pipe: Any, owner: CountingClient) -> None:
        self._pipe = pipe
        self._owner = owner

    def evalsha(self, *args: Any) -> Any:
        self._owner.script_calls += 1
        return self._pipe.evalsha(*args)

    def execute_command(self, *args: Any, **kw: Any) -> Any:
        if str(args[0]).upper() == "EVALSHA":
            self._owner.script_calls += 1
        return self._pipe.execute_command(*args, **kw)

    def execute(self, *args: Any, **kw: Any) -> Any:
        self._owner.round_trips += 1
        return self._pipe.execute(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)


class CountingClient:
    """Counts round trips (a direct command, or one pipeline ``execute``) and script calls."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.round_trips = 0
        self.script_calls = 0

    def evalsha(self, *args: Any) -> Any:
        self.round_trips += 1
        self.script_calls += 1
        return self._client.evalsha(*args)

    def script_load(self, *args: Any) -> Any:
        self.round_trips += 1
        return self._client.script_load(*args)

    def pipeline(self, *args: Any, **kw: Any) -> _CountingPipeline:
        return _CountingPipeline(self._client.pipeline(*args, **kw), self)

    def reset(self) -> None:
        self.round_trips = self.script_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


async def _aclose(client: Any) -> None:
    res = client.aclose() if hasattr(client, "aclose") else client.close()
    if inspect.isawaitable(res):
        await res


def _raw_client(backend: Any, kind: str) -> Any:
    return backend.async_client() if kind == "async" else backend.client()


def _evalsha_calls(r: Any) -> int:
    stats = r.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def _shard_counts(cache: Flavor, reqs: list[tuple[Any, ...]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for q in reqs:
        shard = cache.cache._core.request(q)[2]
        out[shard] = out.get(shard, 0) + 1
    return out


# -- behaviour -----------------------------------------------------------------------------


async def test_order_duplicates_and_misses(cache: Flavor) -> None:
    await cache.put_many([(*req(i), response(i)) for i in (1, 3, 5)])
    asked = [req(i) for i in (0, 1, 2, 3, 1, 5, 5, 4, 0)]
    got = await cache.get_many(asked)
    r1, r3, r5 = response(1), response(3), response(5)
    assert got == [None, r1, None, r3, r1, r5, r5, None, None]
    assert all(g is None or isinstance(g, LLMResponse) for g in got)
    fs = await cache.fleet_stats()
    assert (fs.hits, fs.misses, fs.puts, fs.size) == (5, 4, 3, 3)
    assert fs.tokens_saved == 5 * 30


async def test_counts_match_single_calls(cache_factory: CacheFactory) -> None:
    """The same workload through get_many and through single gets counts the same."""
    batch = cache_factory(key_prefix=cache_factory.prefix + ":b")
    single = cache_factory(key_prefix=cache_factory.prefix + ":s")
    stored = [(*req(i, model=f"m{i % 3}"), response(i, tokens=10 + i)) for i in range(0, 40, 2)]
    asked = [req(i, model=f"m{i % 3}") for i in range(40)] + [req(2, "m2"), req(3, "m0")]
    await batch.put_many(stored)
    for item in stored:
        await single.put(*item)
    got_batch = await batch.get_many(asked)
    got_single = [await single.get(*q) for q in asked]
    assert got_batch == got_single
    fb, fsg = await batch.fleet_stats(), await single.fleet_stats()
    assert fb == fsg
    assert fb.by_model.keys() == {"m0", "m1", "m2"}
    assert sum(m.hits for m in fb.by_model.values()) == fb.hits == 21
    assert fb.misses == 21
    assert fb.tokens_saved == sum(10 + i for i in range(0, 40, 2)) + 12


async def test_empty_batches_do_no_io(cache_factory: CacheFactory, backend: Any) -> None:
    raw = _raw_client(backend, cache_factory.kind)
    counting = CountingClient(raw)
    try:
        c = cache_factory(client=counting)
        assert await c.get_many([]) == []
        assert await c.get_many(iter(())) == []
        await c.put_many([])
        assert counting.round_trips == 0
    finally:
        await _aclose(raw)


@pytest.mark.backends("redis", "valkey")
async def test_big_batch_one_round_trip(cache_factory: CacheFactory, backend: Any, r: Any) -> None:
    """2,500 requests (+ duplicates) over 3 shards: one pipelined round trip per call, each
    script call <= BATCH_CHUNK entries (<= 1000 keys), exact counters and size."""
    raw = _raw_client(backend, cache_factory.kind)
    counting = CountingClient(raw)
    try:
        c = cache_factory(client=counting, shards=3)
        await c.invalidate(*req("none"))  # the first data call records the layout
        reqs = [req(i) for i in range(2500)]
        per_shard = _shard_counts(c, reqs)
        assert len(per_shard) == 3
        # + 1: every put re-asserts the layout record in the same round trip
        expected_calls = sum(-(-n // BATCH_CHUNK) for n in per_shard.values()) + 1

        counting.reset()
        before = _evalsha_calls(r)
        await c.put_many([(*q, response(i)) for i, q in enumerate(reqs)])
        assert counting.round_trips == 1
        assert counting.script_calls == expected_calls
        assert _evalsha_calls(r) - before == expected_calls

        asked = reqs + reqs[:10] + [req("missing")]
        counting.reset()
        before = _evalsha_calls(r)
        got = await c.get_many(asked)
        assert counting.round_trips == 1
        assert _evalsha_calls(r) - before == counting.script_calls >= expected_calls - 1
        assert got[:2500] == [response(i) for i in range(2500)]
        assert got[2500:2510] == [response(i) for i in range(10)]
        assert got[-1] is None

        fs = await c.fleet_stats()
        assert (fs.size, fs.puts, fs.hits, fs.misses) == (2500, 2500, 2510, 1)
        assert fs.tokens_saved == 2510 * 30
    finally:
        await _aclose(raw)


async def test_one_shard_over_chunk_is_split(cache: Flavor) -> None:
    """More than BATCH_CHUNK entries of ONE shard still work (several script calls)."""
    n = 2 * BATCH_CHUNK + 7
    await cache.put_many([(*req(i), response(i)) for i in range(n)])
    got = await cache.get_many([req(i) for i in range(n)])
    assert got == [response(i) for i in range(n)]
    assert await cache.size() == n


async def test_put_many_duplicates_last_wins(cache: Flavor) -> None:
    await cache.put_many([(*req(1), response("a")), (*req(2), response(2))])
    await cache.put_many([(*req(1), response("b")), (*req(1), response("c"))])
    assert await cache.get_many([req(1), req(2)]) == [response("c"), response(2)]
    fs = await cache.fleet_stats()
    assert (fs.size, fs.puts) == (2, 4)


async def test_put_many_ttl(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory(ttl_seconds=100)
    await c.put_many([(*req(1), response(1))])
    await c.put_many([(*req(2), response(2))], ttl_seconds=2.5)
    ttl1 = r.pttl(c.keys_of(*req(1))[0])
    ttl2 = r.pttl(c.keys_of(*req(2))[0])
    assert 99_000 < ttl1 <= 100_000
    assert 0 < ttl2 <= 2500
    score = r.zscore(c.keys_of(*req(2))[1], c.digest_of(*req(2)))
    assert score is not None and score != float("inf")
    no_ttl = cache_factory(key_prefix=cache_factory.prefix + ":n")
    await no_ttl.put_many([(*req(3), response(3))])
    assert r.pttl(no_ttl.keys_of(*req(3))[0]) == -1


async def test_corrupt_entries_like_get(cache: Flavor, r: Any) -> None:
    await cache.put_many([(*req(i), response(i)) for i in range(4)])
    bad_header = cache.keys_of(*req(1))[0]
    bad_body = cache.keys_of(*req(2))[0]
    r.set(bad_header, b"not an envelope at all")
    # A valid header (magic, version 1, no flags, 7 tokens) with a body that is not msgpack.
    r.set(bad_body, b"FC\x01\x00\x00\x00\x00\x07\xc1\xc1\xc1")
    got = await cache.get_many([req(0), req(1), req(2), req(3)])
    assert got == [response(0), None, None, response(3)]
    assert not r.exists(bad_header) and not r.exists(bad_body)
    fs = await cache.fleet_stats()
    assert (fs.hits, fs.misses, fs.corrupt, fs.size) == (2, 2, 2, 2)
    assert fs.tokens_saved == 60  # the bad body's 7 tokens were taken back
    assert fs.by_model["gpt-test"].hits == 2


async def test_missing_entry_repairs_index(cache: Flavor, r: Any) -> None:
    await cache.put_many([(*req(i), response(i)) for i in range(3)])
    r.delete(cache.keys_of(*req(1))[0])  # vanished without a script (like an eviction)
    assert await cache.get_many([req(1), req(1)]) == [None, None]
    fs = await cache.fleet_stats()
    assert (fs.evicted, fs.misses, fs.size) == (1, 2, 2)


# -- input checks: before any I/O -----------------------------------------------------------

BAD_REQUESTS: list[tuple[Any, type[Exception]]] = [
    ("not a list", TypeError),
    (None, TypeError),
    ([req(1), "x"], TypeError),
    ([req(1), req(2)[:4]], ValueError),
    ([req(1), (*req(2), 1)], ValueError),
    ([("q", "s", "m", "0.0", 5)], TypeError),
    ([("q", "s", "m", 0.0, "5")], TypeError),
    ([("q", "s", "m", float("nan"), 5)], ValueError),
    ([("q", None, "m", 0.0, 5)], TypeError),
]


@pytest.mark.parametrize(("requests", "exc"), BAD_REQUESTS)
async def test_get_many_checks_every_request_first(
    cache_factory: CacheFactory, backend: Any, requests: Any, exc: type[Exception]
) -> None:
    raw = _raw_client(backend, cache_factory.kind)
    counting = CountingClient(raw)
    try:
        c = cache_factory(client=counting)
        with pytest.raises(exc):
            await c.get_many(requests)
        assert counting.round_trips == 0
    finally:
        await _aclose(raw)


BAD_ITEMS: list[tuple[Any, dict[str, Any], type[Exception]]] = [
    (42, {}, TypeError),
    ([(*req(1), response(1)), req(2)], {}, ValueError),
    ([(*req(1), response(1)), (*req(2), {"content": "x"})], {}, TypeError),
    ([(*req(1), response(1)), ("q", "s", "m", 0.0, True, response(2))], {}, TypeError),
    ([(*req(1), response(1))], {"ttl_seconds": 0}, ValueError),
    ([(*req(1), response(1))], {"ttl_seconds": "5"}, TypeError),
]


@pytest.mark.parametrize(("items", "kw", "exc"), BAD_ITEMS)
async def test_put_many_checks_every_item_first(
    cache_factory: CacheFactory,
    backend: Any,
    r: Any,
    items: Any,
    kw: dict[str, Any],
    exc: type[Exception],
) -> None:
    raw = _raw_client(backend, cache_factory.kind)
    counting = CountingClient(raw)
    try:
        c = cache_factory(client=counting)
        with pytest.raises(exc):
            await c.put_many(items, **kw)
        assert counting.round_trips == 0
        assert not r.exists(c.keys_of(*req(1))[0])
    finally:
        await _aclose(raw)


async def test_put_many_too_large(cache_factory: CacheFactory) -> None:
    big = LLMResponse(content="x" * 5000)
    lenient = cache_factory(max_entry_bytes=1024, compress_threshold=None)
    await lenient.put_many([(*req(1), response(1)), (*req(2), big)])  # the big one is skipped
    assert await lenient.get_many([req(1), req(2)]) == [response(1), None]
    strict = cache_factory(
        max_entry_bytes=1024,
        compress_threshold=None,
        on_error="raise",
        key_prefix=cache_factory.prefix + ":s",
    )
    with pytest.raises(EntryTooLargeError):
        await strict.put_many([(*req(1), response(1)), (*req(2), big)])
    assert await strict.size() == 0  # nothing stored: the check comes before any I/O


async def test_redis_down_follows_error_policy(cache_factory: CacheFactory) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    lenient = cache_factory(url=dead, breaker_seconds=0)
    assert await lenient.get_many([req(1), req(2), req(1)]) == [None, None, None]
    await lenient.put_many([(*req(1), response(1))])  # skipped, no exception
    assert lenient.cache.error_count == 2
    strict = cache_factory(url=dead, on_error="raise")
    with pytest.raises(CacheUnavailableError):
        await strict.get_many([req(1)])
    with pytest.raises(CacheUnavailableError):
        await strict.put_many([(*req(1), response(1))])


async def test_sync_and_async_share_batches(make_cache: Any, make_async_cache: Any) -> None:
    sync = make_cache()
    aio: AsyncRedisExactCache = make_async_cache()
    sync.put_many([(*req(i), response(i)) for i in range(5)])
    assert await aio.get_many([req(i) for i in range(6)]) == [response(i) for i in range(5)] + [
        None
    ]
    await aio.put_many([(*req(9), response(9))])
    assert sync.get_many([req(9)]) == [response(9)]
    assert sync.fleet_stats().hits == 6
