"""Fleet-wide, exact counters under concurrency: several processes, threads,
asyncio tasks and a forked child share one namespace; no increment is lost."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import threading
from typing import Any

import redis

from fleetcache import AsyncRedisExactCache, LLMResponse, RedisExactCache

from ..conftest import Backend
from ..support.flavors import CacheFactory, Flavor, req, response

KEYS = 12  # shared request keys
OPS = 250  # operations per worker (bounded loop)


def _tokens(i: int) -> int:
    return 10 + i


def _observe(kind: str, url: str, prefix: str, seed: int) -> dict[str, Any]:
    """One fleet member: random gets/puts on shared keys; returns what it observed."""
    rnd = random.Random(seed)
    plan = [(rnd.randrange(KEYS), rnd.random() < 0.2) for _ in range(OPS)]
    seen: dict[str, Any] = {"hits": 0, "misses": 0, "tokens": 0, "puts": 0, "by_model": {}}
    seen["written"] = sorted({i for i, write in plan if write})

    def note(i: int, model: str, got: Any) -> None:
        h, m = seen["by_model"].setdefault(model, [0, 0])
        if got is None:
            seen["misses"] += 1
            seen["by_model"][model] = [h, m + 1]
        else:
            assert got.content == f"answer {i}"
            seen["hits"] += 1
            seen["tokens"] += _tokens(i)
            seen["by_model"][model] = [h + 1, m]

    if kind == "sync":
        with RedisExactCache(url=url, key_prefix=prefix) as c:
            for i, write in plan:
                model = f"m{i % 3}"
                if write:
                    c.put(*req(i, model), response(i, _tokens(i)))
                    seen["puts"] += 1
                else:
                    note(i, model, c.get(*req(i, model)))
    else:

        async def run() -> None:
            async with AsyncRedisExactCache(url=url, key_prefix=prefix) as c:
                for i, write in plan:
                    model = f"m{i % 3}"
                    if write:
                        await c.put(*req(i, model), response(i, _tokens(i)))
                        seen["puts"] += 1
                    else:
                        note(i, model, await c.get(*req(i, model)))

        asyncio.run(run())
    return seen


def _read_stats(url: str, prefix: str) -> dict[str, Any]:
    with RedisExactCache(url=url, key_prefix=prefix) as c:
        return c.fleet_stats().model_dump()


def _sum(observed: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"hits": 0, "misses": 0, "tokens": 0, "puts": 0, "by_model": {}}
    for o in observed:
        for k in ("hits", "misses", "tokens", "puts"):
            total[k] += o[k]
        for model, (h, m) in o["by_model"].items():
            th, tm = total["by_model"].get(model, (0, 0))
            total["by_model"][model] = (th + h, tm + m)
    return total


def test_fleet_counters_exact_across_processes(backend: Backend, prefix: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    kinds = ["sync", "async", "sync", "async"]  # a mixed fleet shares one set of numbers
    with ctx.Pool(len(kinds)) as pool:
        observed = pool.starmap(
            _observe, [(k, backend.url, prefix, seed) for seed, k in enumerate(kinds)]
        )
        fresh = pool.apply(_read_stats, (backend.url, prefix))  # a brand-new reader
    total = _sum(observed)
    assert total["hits"] + total["misses"] + total["puts"] == len(kinds) * OPS
    assert fresh["hits"] == total["hits"]
    assert fresh["misses"] == total["misses"]
    assert fresh["puts"] == total["puts"]
    assert fresh["tokens_saved"] == total["tokens"]
    assert fresh["size"] == len({i for o in observed for i in o["written"]})
    by_model = {m: (s["hits"], s["misses"]) for m, s in fresh["by_model"].items()}
    assert by_model == total["by_model"]
    # This process (not a fleet member) reads the very same numbers.
    with RedisExactCache(url=backend.url, key_prefix=prefix) as c:
        assert c.fleet_stats().model_dump() == fresh


async def test_threads_share_one_cache(backend: Backend, prefix: str) -> None:
    c = RedisExactCache(url=backend.url, key_prefix=prefix)
    n_threads, n_ops = 8, 150
    for i in range(KEYS):
        c.put(*req(i), response(i, _tokens(i)))
    errors: list[BaseException] = []
    hits = [0] * n_threads

    def work(t: int) -> None:
        try:
            for k in range(n_ops):
                i = (t * 7 + k) % KEYS
                got = c.get(*req(i))
                assert got == response(i, _tokens(i))
                hits[t] += 1
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    c.close()
    assert not errors, errors[0]
    assert sum(hits) == n_threads * n_ops
    with RedisExactCache(url=backend.url, key_prefix=prefix) as check:
        fs = check.fleet_stats()
    assert (fs.hits, fs.misses, fs.size) == (n_threads * n_ops, 0, KEYS)


async def test_async_tasks_share_one_cache(cache_factory: CacheFactory) -> None:
    # what is tested is 200 concurrent tasks on one cache object, not the 0.25 s fail-open
    # timeout: on a loaded 2-core machine a burst can take longer than that to be served
    c: Flavor = cache_factory(socket_timeout=5, connect_timeout=5)
    for i in range(KEYS):
        await c.put(*req(i), response(i))
    if not c.is_async:  # the sync flavour: plain sequential calls from one task
        results = [await c.get(*req(i % KEYS)) for i in range(200)]
    else:
        results = await asyncio.gather(*(c.get(*req(i % KEYS)) for i in range(200)))
    assert all(r == response(i % KEYS) for i, r in enumerate(results))
    assert (await c.fleet_stats()).hits == 200


def test_use_after_fork(backend: Backend, prefix: str, r: redis.Redis) -> None:
    c = RedisExactCache(url=backend.url, key_prefix=prefix)
    c.put(*req(1), response(1))
    assert c.get(*req(1)) is not None  # the parent's pool now holds a live connection
    pid = os.fork()
    if pid == 0:  # child: use the inherited cache object, report through the exit code
        code = 1
        try:
            ok = c.get(*req(1)) == response(1)
            c.put(*req(2), LLMResponse(content="from child"))
            ok = ok and c.get(*req(2)) == LLMResponse(content="from child")
            code = 0 if ok else 2
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's connection was not disturbed by the child's use.
    assert c.get(*req(2)) == LLMResponse(content="from child")
    fs = c.fleet_stats()
    assert (fs.hits, fs.puts, fs.size) == (4, 2, 2)
    c.close()
