"""Fleet-wide single-flight ``get_or_compute``, through both the sync and the async cache:
one compute per request across processes, threads and tasks; a dead holder's lease expires
and a waiter takes over; a failing compute releases the lease at once and its error reaches
only its own caller; ``wait_timeout``; the error policy; counters (``coalesced``)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from fleetcache import CacheUnavailableError, LLMResponse, RedisExactCache

from ..support.flavors import CacheFactory, Flavor, req, response
from ..support.servers import free_port
from .test_batch import CountingClient, _aclose, _raw_client

REQ = req("flight")
ROOT = Path(__file__).resolve().parents[2]


def make_compute(flavor: Flavor, fn: Callable[[int], Any], delay: float = 0.0) -> Any:
    """A compute of the flavour's kind: counts its calls (thread-safe), sleeps ``delay`` s,
    then returns ``fn(n)`` (n = 1 for the first call); ``fn`` may raise."""
    lock = threading.Lock()
    calls: list[int] = []

    def count() -> int:
        with lock:
            calls.append(1)
            return len(calls)

    if flavor.is_async:

        async def acompute() -> Any:
            n = count()
            await asyncio.sleep(delay)
            return fn(n)

        acompute.calls = calls  # type: ignore[attr-defined]
        return acompute

    def compute() -> Any:
        n = count()
        time.sleep(delay)
        return fn(n)

    compute.calls = calls  # type: ignore[attr-defined]
    return compute


async def crowd(caches: list[Flavor], n: int, compute: Any, **kw: Any) -> list[Any]:
    """``n`` concurrent ``get_or_compute`` calls of REQ spread over ``caches``: asyncio tasks
    for the async flavour, threads for the sync one. Exceptions are returned, not raised."""
    if caches[0].is_async:
        coros = [
            caches[i % len(caches)].cache.get_or_compute(*REQ, compute, **kw) for i in range(n)
        ]
        return list(await asyncio.gather(*coros, return_exceptions=True))

    def one(i: int) -> Any:
        try:
            return caches[i % len(caches)].cache.get_or_compute(*REQ, compute, **kw)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


async def crowd_caches(cache_factory: CacheFactory) -> list[Flavor]:
    """Four cache objects on one namespace (four 'servers'), each used once already.

    Generous timeouts: a burst of 100 tasks opens 100 connections at once, which on a busy
    2-core test machine can take longer than the 0.25 s default and would turn into
    fail-open computes. The warm-up call: a cold async ``RedisCluster`` client that gets
    many concurrent first commands fails most of them (redis-py initialises the cluster
    client per command and drops connections in use), for plain ``get`` as well.
    """
    caches = [cache_factory(socket_timeout=5, connect_timeout=5) for _ in range(4)]
    for c in caches:
        await c.size()
    return caches


def crowd_size(flavor: Flavor) -> int:
    return 100 if flavor.is_async else 16


def lease_key(c: Flavor) -> str:
    core = c.cache._core
    _req, digest, shard = core.request(REQ)
    return core.keys.lease(shard, digest)


# -- one caller ----------------------------------------------------------------------------


async def test_miss_computes_and_stores_then_hits(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory(ttl_seconds=50)
    compute = make_compute(c, lambda n: response("computed"))
    got = await c.get_or_compute(*REQ, compute)
    assert got == response("computed") and len(compute.calls) == 1
    assert not r.exists(lease_key(c))  # released by the same script that stored the entry
    assert 0 < r.pttl(c.keys_of(*REQ)[0]) <= 50_000  # the cache's TTL applies
    assert await c.get_or_compute(*REQ, compute) == response("computed")
    assert await c.get(*REQ) == response("computed")
    assert len(compute.calls) == 1
    fs = await c.fleet_stats()
    assert (fs.misses, fs.hits, fs.puts, fs.coalesced, fs.size) == (1, 2, 1, 0, 1)
    assert fs.tokens_saved == 60


async def test_waiter_is_answered_when_the_entry_lands(cache_factory: CacheFactory, r: Any) -> None:
    """Another holder's lease: the caller waits, and returns the holder's answer (coalesced)."""
    c = cache_factory()
    holder = cache_factory(key_prefix=cache_factory.prefix)
    r.set(lease_key(c), b"someone-else", px=20_000)
    compute = make_compute(c, lambda n: response("mine"))
    if c.is_async:
        task = asyncio.ensure_future(c.get_or_compute(*REQ, compute))
        await asyncio.sleep(0.05)
        assert not task.done()
        await holder.put(*REQ, response("theirs"))
        got = await asyncio.wait_for(task, 5)
    else:
        assert isinstance(c.cache, RedisExactCache)
        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(c.cache.get_or_compute, *REQ, compute)
            time.sleep(0.05)
            assert not fut.done()
            await holder.put(*REQ, response("theirs"))
            got = fut.result(5)
    assert got == response("theirs") and compute.calls == []
    fs = await c.fleet_stats()
    assert (fs.misses, fs.hits, fs.coalesced, fs.tokens_saved) == (1, 0, 1, 30)
    assert r.get(lease_key(c)) == b"someone-else"  # never touched another's lease


async def test_dead_holder_lease_expires_and_caller_takes_over(
    cache_factory: CacheFactory, r: Any
) -> None:
    c = cache_factory()
    r.set(lease_key(c), b"dead-holder", px=300)
    seen: list[bytes | None] = []

    def fn(n: int) -> Any:
        seen.append(r.get(lease_key(c)))  # who holds the lease while we compute
        return response("taken over")

    compute = make_compute(c, fn)
    start = time.monotonic()
    assert await c.get_or_compute(*REQ, compute) == response("taken over")
    assert time.monotonic() - start >= 0.25  # it waited for the lease to end
    assert len(seen) == 1 and seen[0] not in (None, b"dead-holder")
    assert not r.exists(lease_key(c))


async def test_wait_timeout_computes_without_the_lease(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory()
    r.set(lease_key(c), b"slow-holder", px=30_000)
    compute = make_compute(c, lambda n: response("impatient"))
    start = time.monotonic()
    assert await c.get_or_compute(*REQ, compute, wait_timeout=0.2) == response("impatient")
    assert time.monotonic() - start < 10
    assert r.get(lease_key(c)) == b"slow-holder"  # not ours: left alone
    assert await c.get(*REQ) == response("impatient")
    r.delete(c.keys_of(*REQ)[0])
    assert await c.get_or_compute(*REQ, compute, wait_timeout=0) == response("impatient")
    assert len(compute.calls) == 2


async def test_compute_error_releases_lease_at_once(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory()

    def fail(n: int) -> Any:
        assert r.exists(lease_key(c))
        raise OSError("the LLM is down")  # an OSError from compute is not a Redis fault

    with pytest.raises(OSError, match="LLM is down"):
        await c.get_or_compute(*REQ, make_compute(c, fail))
    assert not r.exists(lease_key(c))
    assert c.cache.error_count == 0
    assert await c.size() == 0


async def test_compute_that_returns_no_response_keeps_its_answer(
    cache_factory: CacheFactory, r: Any
) -> None:
    """The caller gets compute()'s answer whether or not it could be stored
    (here it is not a response model: logged skip); the lease is not left holding a token."""
    c = cache_factory(on_error="raise")
    got = await c.get_or_compute(*REQ, make_compute(c, lambda n: {"content": "dict"}))
    assert got == {"content": "dict"}
    assert r.get(lease_key(c)) in (None, b"!uncacheable")
    assert await c.get(*REQ) is None


async def test_late_store_keeps_anothers_lease(cache_factory: CacheFactory, r: Any) -> None:
    """A holder whose lease expired (and was taken) still stores, but never deletes the new
    holder's lease."""
    c = cache_factory()

    def fn(n: int) -> Any:
        r.set(lease_key(c), b"new-holder", px=20_000)
        return response("late")

    assert await c.get_or_compute(*REQ, make_compute(c, fn)) == response("late")
    assert r.get(lease_key(c)) == b"new-holder"
    assert await c.get(*REQ) == response("late")


async def test_corrupt_entry_is_a_miss(cache_factory: CacheFactory, r: Any) -> None:
    c = cache_factory()
    r.set(c.keys_of(*REQ)[0], b"FC\x01\x00\x00\x00\x00\x05\xc1")  # header ok, body not
    compute = make_compute(c, lambda n: response("fresh"))
    assert await c.get_or_compute(*REQ, compute) == response("fresh")
    fs = await c.fleet_stats()
    assert (fs.hits, fs.misses, fs.corrupt, fs.tokens_saved, fs.puts) == (0, 1, 1, 0, 1)
    r.set(c.keys_of(*REQ)[0], b"junk")  # not even a header
    assert await c.get_or_compute(*REQ, compute) == response("fresh")
    assert len(compute.calls) == 2
    assert (await c.fleet_stats()).corrupt == 2


BAD_CALLS: list[tuple[tuple[Any, ...], dict[str, Any], type[Exception]]] = [
    ((*REQ, "not callable"), {}, TypeError),
    ((*REQ[:4], "256", None), {}, TypeError),
    ((*REQ, None), {"lease_seconds": 0}, ValueError),
    ((*REQ, None), {"lease_seconds": float("nan")}, ValueError),
    ((*REQ, None), {"lease_seconds": "30"}, TypeError),
    ((*REQ, None), {"lease_seconds": True}, TypeError),
    ((*REQ, None), {"wait_timeout": -1}, ValueError),
    ((*REQ, None), {"wait_timeout": "1"}, TypeError),
]


@pytest.mark.parametrize(("args", "kw", "exc"), BAD_CALLS)
async def test_bad_input_before_any_io(
    cache_factory: CacheFactory, backend: Any, args: tuple[Any, ...], kw: dict[str, Any], exc: Any
) -> None:
    raw = _raw_client(backend, cache_factory.kind)
    counting = CountingClient(raw)
    try:
        c = cache_factory(client=counting)
        fields, compute = args[:5], args[5]
        if compute is None:
            compute = make_compute(c, lambda n: response(1))
        with pytest.raises(exc):
            await c.get_or_compute(*fields, compute, **kw)
        assert counting.round_trips == 0
    finally:
        await _aclose(raw)


async def test_redis_down_just_computes(cache_factory: CacheFactory) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    c = cache_factory(url=dead)  # the breaker opens after the first fault
    compute = make_compute(c, lambda n: response(n))
    assert await c.get_or_compute(*REQ, compute) == response(1)
    assert await c.get_or_compute(*REQ, compute) == response(2)  # breaker open: no I/O
    assert c.cache.error_count == 1

    def fail(n: int) -> Any:
        raise ValueError("compute's own error")

    with pytest.raises(ValueError, match="own error"):
        await c.get_or_compute(*REQ, make_compute(c, fail))
    strict = cache_factory(url=dead, on_error="raise")
    strict_compute = make_compute(c, lambda n: response(n))
    with pytest.raises(CacheUnavailableError):
        await strict.get_or_compute(*REQ, strict_compute)
    assert strict_compute.calls == []


# -- crowds: threads (sync) and 100 asyncio tasks (async) ----------------------------------


async def test_crowd_computes_once(cache_factory: CacheFactory, r: Any) -> None:
    caches = await crowd_caches(cache_factory)
    n = crowd_size(caches[0])
    compute = make_compute(caches[0], lambda k: response("once"), delay=0.5)
    results = await crowd(caches, n, compute)
    assert len(compute.calls) == 1
    assert results == [response("once")] * n
    fs = await caches[0].fleet_stats()
    assert fs.puts == 1 and fs.hits + fs.misses == n
    assert fs.coalesced + fs.hits == n - 1
    assert fs.tokens_saved == 30 * (n - 1)
    assert not r.exists(lease_key(caches[0]))


async def test_crowd_after_dead_holder(cache_factory: CacheFactory, r: Any) -> None:
    """A holder died (its lease stays until it expires, 1 s): one waiter takes over."""
    caches = await crowd_caches(cache_factory)
    r.set(lease_key(caches[0]), b"killed-process", px=1000)
    n = crowd_size(caches[0])
    compute = make_compute(caches[0], lambda k: response("second try"), delay=0.1)
    results = await crowd(caches, n, compute, lease_seconds=1.0)
    assert len(compute.calls) == 1
    assert results == [response("second try")] * n
    assert (await caches[0].fleet_stats()).coalesced == n - 1


async def test_crowd_compute_raises_once(cache_factory: CacheFactory) -> None:
    caches = await crowd_caches(cache_factory)
    n = crowd_size(caches[0])

    def fn(k: int) -> Any:
        if k == 1:
            raise RuntimeError("first compute failed")
        return response("recovered")

    compute = make_compute(caches[0], fn, delay=0.2)
    results = await crowd(caches, n, compute)
    errors = [x for x in results if isinstance(x, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert results.count(response("recovered")) == n - 1
    assert len(compute.calls) == 2


async def test_cancelled_holder_task_releases_lease(make_async_cache: Any, r: Any) -> None:
    """asyncio: a holder cancelled mid-compute gives the lease up; a waiter takes over."""
    c = make_async_cache()
    started = asyncio.Event()

    async def hang() -> Any:
        started.set()
        await asyncio.sleep(60)

    async def quick() -> Any:
        return response("waiter")

    holder = asyncio.ensure_future(c.get_or_compute(*REQ, hang, lease_seconds=30))
    await asyncio.wait_for(started.wait(), 5)
    waiter = asyncio.ensure_future(c.get_or_compute(*REQ, quick, lease_seconds=30))
    await asyncio.sleep(0.02)
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    assert await asyncio.wait_for(waiter, 5) == response("waiter")  # long before 30 s


# -- the fleet: 16 OS processes ------------------------------------------------------------


def _fleet(url: str, prefix: str, mode: str, n: int, r: Any, lease: float) -> list[Any]:
    """Start ``n`` worker processes, release them at once, and collect their results.
    In ``die`` mode, SIGKILL the first compute's holder (by PID) as soon as it starts."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "tests.support.flight_worker", url, prefix, mode, str(lease)]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    try:
        deadline = time.monotonic() + 60
        while int(r.get(f"{prefix}:ready") or 0) < n:
            assert time.monotonic() < deadline, "workers did not start"
            assert all(p.poll() is None for p in procs), "a worker exited early"
            time.sleep(0.01)
        r.set(f"{prefix}:go", 1)
        killed = None
        if mode == "die":
            while (holder := r.get(f"{prefix}:holder")) is None:
                assert time.monotonic() < deadline, "no holder started computing"
                time.sleep(0.005)
            killed = int(holder)
            os.kill(killed, signal.SIGKILL)
        out = []
        for p in procs:
            stdout, _ = p.communicate(timeout=60)
            if p.pid == killed:
                assert p.returncode == -signal.SIGKILL
                continue
            assert p.returncode == 0, stdout
            out.append(json.loads(stdout.strip().splitlines()[-1]))
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)


@pytest.mark.backends("redis")
def test_fleet_16_processes_compute_once(backend: Any, prefix: str, r: Any) -> None:
    results = _fleet(backend.url, prefix, "slow", 16, r, lease=30.0)
    assert int(r.get(f"{prefix}:computes")) == 1
    contents = {x.get("content") for x in results}
    assert len(results) == 16 and len(contents) == 1 and None not in contents


@pytest.mark.backends("redis")
def test_fleet_holder_killed_another_completes(backend: Any, prefix: str, r: Any) -> None:
    results = _fleet(backend.url, prefix, "die", 8, r, lease=1.0)
    assert int(r.get(f"{prefix}:computes")) == 2
    contents = {x.get("content") for x in results}
    assert len(results) == 7 and len(contents) == 1 and None not in contents


@pytest.mark.backends("redis")
def test_fleet_compute_raises_reaches_one(backend: Any, prefix: str, r: Any) -> None:
    results = _fleet(backend.url, prefix, "raise", 8, r, lease=30.0)
    errors = [x for x in results if "error" in x]
    answers = {x["content"] for x in results if "content" in x}
    assert len(errors) == 1 and len(answers) == 1
    assert int(r.get(f"{prefix}:computes")) == 2


def test_response_type_roundtrip() -> None:
    assert isinstance(response(1), LLMResponse)
