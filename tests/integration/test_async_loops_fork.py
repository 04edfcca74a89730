"""The async cache across event loops and forks, and clients of the wrong kind. Hits are
counted server-side (the shard's stats hash), so a hit the server counted but the caller
never got shows up as a difference."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from fleetcache import AsyncRedisExactCache, FleetStats, RedisExactCache
from fleetcache.core.models import parse_counters

from ..support.flavors import req, response
from ..support.servers import ServerProc, free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def raw(redis_proc: ServerProc) -> Iterator[redis.Redis]:
    c = redis_proc.client()
    yield c
    c.close()


def _hits(raw: redis.Redis, prefix: str) -> int:
    """Hits counted in shard 0's stats hash (its ``hits`` field and per-model records)."""
    fs = FleetStats()
    flat = [x for kv in raw.hgetall(f"{{{prefix}:0}}:s").items() for x in kv]
    parse_counters(flat, fs)
    return int(fs.hits)


def _owned(redis_proc: ServerProc, prefix: str) -> AsyncRedisExactCache:
    return AsyncRedisExactCache(url=redis_proc.url, key_prefix=prefix)


# -- 11: one cache, several event loops ---------------------------------------------------


def test_url_built_cache_works_from_a_second_and_third_asyncio_run(
    redis_proc: ServerProc, raw: redis.Redis, prefix: str
) -> None:
    cache = _owned(redis_proc, prefix)
    asyncio.run(cache.put(*req(1), response(1)))
    got = [asyncio.run(cache.get(*req(1))) for _ in range(3)]  # three loops, one per run
    assert got == [response(1)] * 3
    assert _hits(raw, prefix) == 3  # every counted hit was delivered
    assert cache.error_count == 0
    fs = asyncio.run(cache.fleet_stats())
    assert (fs.hits, fs.size) == (3, 1)


def test_given_client_works_across_sequential_loops(
    redis_proc: ServerProc, raw: redis.Redis, prefix: str
) -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=redis_proc.port)
    cache = AsyncRedisExactCache(client=client, key_prefix=prefix)
    asyncio.run(cache.put(*req(1), response(1)))
    assert asyncio.run(cache.get(*req(1))) == response(1)  # pool reset: the old loop is closed
    assert asyncio.run(cache.get(*req(1))) == response(1)
    assert _hits(raw, prefix) == 2
    assert cache.error_count == 0


def _loop_in_thread() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    return loop, t


def _stop(loop: asyncio.AbstractEventLoop, t: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)
    loop.close()


def test_url_built_cache_serves_two_live_loops_at_once(
    redis_proc: ServerProc, raw: redis.Redis, prefix: str
) -> None:
    cache = _owned(redis_proc, prefix)
    loop, t = _loop_in_thread()
    try:
        asyncio.run_coroutine_threadsafe(cache.put(*req(1), response(1)), loop).result(10)

        async def both() -> list[Any]:
            here = [await cache.get(*req(1)) for _ in range(20)]
            there = [
                asyncio.run_coroutine_threadsafe(cache.get(*req(1)), loop).result(10)
                for _ in range(20)
            ]
            return here + there

        assert asyncio.run(both()) == [response(1)] * 40
        assert _hits(raw, prefix) == 40
        assert cache.error_count == 0
    finally:
        _stop(loop, t)


def test_given_client_on_two_live_loops_is_a_clear_error_before_any_io(
    redis_proc: ServerProc, raw: redis.Redis, prefix: str
) -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=redis_proc.port)
    cache = AsyncRedisExactCache(client=client, key_prefix=prefix)
    loop, t = _loop_in_thread()
    try:
        asyncio.run_coroutine_threadsafe(cache.put(*req(1), response(1)), loop).result(10)
        with pytest.raises(RuntimeError, match="another, still running event loop"):
            asyncio.run(cache.get(*req(1)))
        assert _hits(raw, prefix) == 0  # refused before the script ran: nothing counted
        got = asyncio.run_coroutine_threadsafe(cache.get(*req(1)), loop).result(10)
        assert got == response(1)  # its own loop still works
    finally:
        _stop(loop, t)


def test_aclose_then_reuse_in_a_new_loop(redis_proc: ServerProc, prefix: str) -> None:
    cache = _owned(redis_proc, prefix)

    async def put_and_close() -> None:
        await cache.put(*req(1), response(1))
        await cache.aclose()

    asyncio.run(put_and_close())
    assert asyncio.run(cache.get(*req(1))) == response(1)


# -- 12: forked children --------------------------------------------------------------------


def _child_get(cache: AsyncRedisExactCache, i: int) -> bool:
    return bool(asyncio.run(cache.get(*req(i))) == response(i))


@pytest.mark.parametrize("given", [False, True], ids=["url", "given-client"])
def test_forked_child_first_get_is_served(
    redis_proc: ServerProc, raw: redis.Redis, prefix: str, given: bool
) -> None:
    if given:
        client = redis.asyncio.Redis(host="127.0.0.1", port=redis_proc.port)
        cache = AsyncRedisExactCache(client=client, key_prefix=prefix)
    else:
        cache = _owned(redis_proc, prefix)

    async def warm() -> None:  # the parent has open connections when it forks
        for i in range(3):
            await cache.put(*req(i), response(i))
        assert await cache.get(*req(0)) == response(0)

    asyncio.run(warm())
    pid = os.fork()
    if pid == 0:  # child: exit code 0 only if the first get of each request was served
        try:
            ok = _child_get(cache, 1) and _child_get(cache, 2)
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child's first get missed"
    assert _hits(raw, prefix) == 3  # parent 1 + child 2: each counted hit was delivered
    assert asyncio.run(cache.get(*req(0))) == response(0)  # the parent is unharmed
    assert _hits(raw, prefix) == 4


def _mp_worker(cache: AsyncRedisExactCache, q: Any) -> None:
    q.put(_child_get(cache, 1))


def test_multiprocessing_fork_children(
    redis_proc: ServerProc, raw: redis.Redis, prefix: str
) -> None:
    cache = _owned(redis_proc, prefix)

    async def warm() -> None:
        await cache.put(*req(1), response(1))
        assert await cache.get(*req(1)) == response(1)

    asyncio.run(warm())
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_mp_worker, args=(cache, q)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [q.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(30)
    assert results == [True, True, True]
    assert _hits(raw, prefix) == 4


# -- 13: a client of the wrong kind ---------------------------------------------------------


def test_sync_cache_refuses_asyncio_clients() -> None:
    port = free_port()  # nothing listens: construction must not need a server
    for client in (
        redis.asyncio.Redis(host="127.0.0.1", port=port),
        AsyncRedisCluster(host="127.0.0.1", port=port),
        AsyncSentinel([("127.0.0.1", port)]).master_for("mymaster"),
    ):
        with pytest.raises(TypeError, match="RedisExactCache needs a sync Redis client"):
            RedisExactCache(client=client)


def test_async_cache_refuses_sync_clients(redis_proc: ServerProc, cluster_proc: Any) -> None:
    for client in (
        redis.Redis(host="127.0.0.1", port=redis_proc.port),
        cluster_proc.client(),
        Sentinel([("127.0.0.1", free_port())]).master_for("mymaster"),
    ):
        with pytest.raises(TypeError, match="AsyncRedisExactCache needs an asyncio Redis"):
            AsyncRedisExactCache(client=client)
        client.close()


def test_matching_clients_are_accepted(redis_proc: ServerProc, prefix: str) -> None:
    sync = RedisExactCache(client=redis_proc.client(), key_prefix=prefix)
    sync.put(*req(1), response(1))
    assert sync.get(*req(1)) == response(1)
    aclient = redis.asyncio.Redis(host="127.0.0.1", port=redis_proc.port)
    acache = AsyncRedisExactCache(client=aclient, key_prefix=prefix)
    assert asyncio.run(acache.get(*req(1))) == response(1)
