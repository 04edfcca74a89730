"""Counters stay exact and paid-for answers are kept under faults and hostile data: the
layout record lost or refused, a stalled server, entry keys of another type, corrupt entries
read repeatedly, answers that cannot be stored, decompression bombs, single-flight with
unstorable answers or slow holders, TTLs the server cannot honour, a stricter
``response_model``. Each test failed on the code before its fix (commit 50c4593). Real
servers only: the session's backends (redis, valkey, cluster) through both flavours, or a
private server where the scenario stalls or fills it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack
import pytest
from pydantic import BaseModel

from fleetcache import CacheUnavailableError, LLMResponse, RedisExactCache, ToolCallResult
from fleetcache.cli import main
from fleetcache.core.envelope import HEADER
from fleetcache.core.keys import KeySpace

from ..support.flavors import CacheFactory, Flavor, req, response

# -- the layout record {P}:meta ---------------------------------------------------------------


def _meta(prefix: str) -> str:
    return KeySpace(prefix, 1).meta


def _cli_json(capsys: Any, *args: str) -> tuple[int, Any, str]:
    code = main(["stats", "--json", *args])
    cap = capsys.readouterr()
    return code, (json.loads(cap.out) if code == 0 else None), cap.err


def test_looking_never_writes_and_a_running_fleet_reasserts_its_layout(
    backend: Any, prefix: str, r: Any, capsys: Any
) -> None:
    """the layout record vanishes (restart without persistence, eviction) while a
    4-shard fleet runs. ``fleetcache stats`` and every looking call write nothing (before:
    stats recorded shards=1 and every new shards=4 process then raised on get); stats says
    the layout is unknown or, given --shards, reports the true shards and size; the fleet's
    next put records the layout again."""
    url = backend.url
    fleet = RedisExactCache(url=url, key_prefix=prefix, shards=4)
    try:
        for i in range(40):
            fleet.put(*req(i), response(i))
        assert r.get(_meta(prefix)) == b"fleetcache-1;shards=4"
        r.delete(_meta(prefix))  # what the restart or the eviction did to the record

        code, _, err = _cli_json(capsys, "--url", url, "--prefix", prefix)
        assert code == 1 and "--shards" in err and "unknown" in err
        code, body, _ = _cli_json(capsys, "--url", url, "--prefix", prefix, "--shards", "4")
        assert code == 0 and (body["shards"], body["size"]) == (4, 40)
        assert main(["stats", "--url", url, "--prefix", prefix, "--shards", "4"]) == 0
        capsys.readouterr()
        with RedisExactCache(url=url, key_prefix=prefix, shards=1) as looker:
            assert looker.stats.size <= 40 and len(looker) <= 40
            looker.fleet_stats()
        assert not r.exists(_meta(prefix)), "looking wrote the layout record"

        with RedisExactCache(url=url, key_prefix=prefix, shards=4) as newcomer:
            assert newcomer.get(*req(3)) == response(3)  # before: LayoutMismatchError

        fleet.put(*req(40), response(40))  # the running fleet re-asserts its layout
        assert r.get(_meta(prefix)) == b"fleetcache-1;shards=4"
        code, body, _ = _cli_json(capsys, "--url", url, "--prefix", prefix)
        assert code == 0 and (body["shards"], body["size"]) == (4, 41)
    finally:
        fleet.close()


def test_cli_shards_option_reads_only(backend: Any, prefix: str, r: Any, capsys: Any) -> None:
    """--shards is only a hint for a missing record: a recorded count wins (another one is a
    usage error), a namespace without data still does not exist, nothing is written."""
    url = backend.url
    assert main(["stats", "--url", url, "--prefix", prefix, "--shards", "4"]) == 4
    with RedisExactCache(url=url, key_prefix=prefix, shards=2) as c:
        c.put(*req(1), response(1))
    assert main(["stats", "--url", url, "--prefix", prefix, "--shards", "4"]) == 2
    assert "records shards=2" in capsys.readouterr().err
    assert r.get(_meta(prefix)) == b"fleetcache-1;shards=2"


async def test_layout_mismatch_is_a_counted_fault_under_miss(
    cache_factory: CacheFactory, r: Any
) -> None:
    """a data call never raises for a layout problem with on_error="miss": a logged,
    counted fault served as a miss/skip; with "raise" it is LayoutMismatchError."""
    from fleetcache import LayoutMismatchError

    r.set(_meta(cache_factory.prefix), b"fleetcache-1;shards=7")
    c = cache_factory()
    assert await c.get(*req(1)) is None
    await c.put(*req(1), response(1))
    assert await c.get_many([req(1)]) == [None]
    assert await c.get_or_compute(*req(1), _const_compute(c, response(9))) == response(9)
    assert c.cache.error_count == 4
    strict = cache_factory(on_error="raise")
    with pytest.raises(LayoutMismatchError):
        await strict.get(*req(1))


def _const_compute(c: Flavor, value: Any) -> Any:
    if c.is_async:

        async def acompute() -> Any:
            return value

        return acompute
    return lambda: value


@pytest.mark.backends("redis", "valkey")
async def test_full_server_noeviction_new_cache_reads(
    cache_factory: CacheFactory, private_server: Any, capsys: Any
) -> None:
    """at maxmemory with noeviction, a NEW cache object's first call used to be the
    layout write, refused with OOM: its get missed an entry that exists, and fleet_stats /
    ``fleetcache stats`` failed. Now the layout is read first and written only when absent."""
    srv = private_server("--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
    url, prefix = srv.url, cache_factory.prefix
    writer = RedisExactCache(url=url, key_prefix=prefix, on_error="raise", compress_threshold=None)
    writer.put(*req("kept"), response("kept"))
    blob = LLMResponse(content="z" * 20_000)
    with pytest.raises(CacheUnavailableError):  # fill to OOM (bounded: 3 MB / 20 KB)
        for i in range(1000):
            writer.put(*req(i), blob)
    writer.close()
    kind_cache = cache_factory(url=url)  # a new cache object of each flavour
    assert await kind_cache.get(*req("kept")) == response("kept")
    fs = await kind_cache.fleet_stats()
    assert fs.size >= 2
    assert main(["stats", "--url", url, "--prefix", prefix]) == 0
    assert "entries (live)" in capsys.readouterr().out


# -- counting exactly once through a brief stall ----------------------------------------------


def _stall(srv: Any, seconds: float) -> threading.Thread:
    """Block the server's event loop for ``seconds`` (DEBUG SLEEP, from a thread): commands
    that arrive meanwhile are read and run when it wakes up, even from a client that gave
    up and closed its connection."""

    def sleep() -> None:
        with srv.client() as admin:
            admin.execute_command("DEBUG", "SLEEP", seconds)

    t = threading.Thread(target=sleep, daemon=True)
    t.start()
    time.sleep(0.05)  # the DEBUG SLEEP is running
    return t


@pytest.mark.backends("redis", "valkey")
async def test_stall_never_counts_twice(cache_factory: CacheFactory, private_server: Any) -> None:
    """a get and a put during a 0.45 s stall counted hits=2 / puts=2: redis-py's
    retry re-sent the EVALSHA after the 0.25 s timeout, and both ran when the server woke
    up. Now a call is sent once: counted once, and it still returns (a miss/skip) within
    the fail-open promise (~0.5 s)."""
    srv = private_server("--enable-debug-command", "yes")
    getter = cache_factory(url=srv.url, key_prefix="stall")
    putter = cache_factory(url=srv.url, key_prefix="stall")
    await getter.put(*req(1), response(1))
    await putter.get(*req(0))  # connected, layout checked
    await getter.reset_stats()
    slowest = 0.0
    for call in (lambda: getter.get(*req(1)), lambda: putter.put(*req(2), response(2))):
        stall = _stall(srv, 0.45)
        t0 = time.monotonic()
        await call()
        slowest = max(slowest, time.monotonic() - t0)
        stall.join(5)
    fs = await cache_factory(url=srv.url, key_prefix="stall").fleet_stats()
    assert (fs.hits, fs.puts) == (1, 1), fs
    assert slowest < 1.25, slowest


# -- entry keys of another type, corrupt entries read repeatedly ------------------------------

WRONG_TYPES = {
    "hash": lambda r, k: r.hset(k, "x", "y"),
    "list": lambda r, k: r.rpush(k, "x"),
    "set": lambda r, k: r.sadd(k, "x"),
}


def _plant_wrong_type(cache: Flavor, r: Any, kind: str, *fields: Any) -> tuple[str, str]:
    entry, index, _ = cache.keys_of(*fields)
    r.delete(entry)
    WRONG_TYPES[kind](r, entry)
    r.zadd(index, {cache.digest_of(*fields): float("inf")})
    return entry, index


@pytest.mark.parametrize("kind", sorted(WRONG_TYPES))
async def test_wrong_type_entry_is_a_counted_corrupt_miss(
    cache_factory: CacheFactory, r: Any, kind: str
) -> None:
    """an entry key holding a hash/list/set (another client): the get script failed
    with WRONGTYPE, nothing was counted and "raise" raised. Now: a counted corrupt miss, the
    key deleted and its index member removed, never raised."""
    c = cache_factory(on_error="raise")
    await c.put(*req(1), response(1))
    entry, index = _plant_wrong_type(c, r, kind, *req(1))
    assert await c.get(*req(1)) is None
    assert not r.exists(entry) and r.zscore(index, c.digest_of(*req(1))) is None
    fs = await c.fleet_stats()
    assert (fs.hits, fs.misses, fs.corrupt, fs.size) == (0, 1, 1, 0)
    # single-flight on a wrong-type key: a miss, one compute, the answer stored
    _plant_wrong_type(c, r, kind, *req(2))
    assert await c.get_or_compute(*req(2), _const_compute(c, response(2))) == response(2)
    assert await c.get(*req(2)) == response(2)
    assert (await c.fleet_stats()).corrupt == 2


@pytest.mark.parametrize("kind", sorted(WRONG_TYPES))
async def test_wrong_type_entry_in_a_batch_spares_the_others(
    cache_factory: CacheFactory, r: Any, kind: str
) -> None:
    """one wrong-type entry made the whole get_many [None]*n, uncounted (and hits
    before it were counted, never delivered). Now the others are served and counted."""
    c = cache_factory(on_error="raise")
    await c.put_many([(*req(i), response(i)) for i in range(5)])
    _plant_wrong_type(c, r, kind, *req(2))
    got = await c.get_many([req(i) for i in range(5)])
    assert got == [response(0), response(1), None, response(3), response(4)]
    fs = await c.fleet_stats()
    assert (fs.hits, fs.misses, fs.corrupt, fs.size) == (4, 1, 1, 4)


async def test_one_corrupt_entry_read_three_times_counts_once(
    cache_factory: CacheFactory, r: Any
) -> None:
    """one corrupt entry read 3 times in one get_many counted corrupt=3, three
    single gets count 1. Both count corrupt=1, misses=3 now (corrupt counts dropped
    entries, by the call that dropped it)."""
    bad = HEADER.pack(b"FC", 1, 0, 7) + b"\xc1\xc1\xc1"  # header ok, body undecodable
    batch = cache_factory(key_prefix=cache_factory.prefix + ":b")
    single = cache_factory(key_prefix=cache_factory.prefix + ":s")
    for c in (batch, single):
        await c.put(*req(1), response(1))
        r.set(c.keys_of(*req(1))[0], bad)
    assert await batch.get_many([req(1)] * 3) == [None] * 3
    for _ in range(3):
        assert await single.get(*req(1)) is None
    fb, fsg = await batch.fleet_stats(), await single.fleet_stats()
    assert (fb.hits, fb.misses, fb.corrupt, fb.tokens_saved) == (0, 3, 1, 0)
    assert fb == fsg


# -- paid-for answers are never lost ----------------------------------------------------------


def _big_int_response() -> LLMResponse:
    return LLMResponse(
        content="big",
        parsed={"id": 2**70, "neg": -(2**100), "list": [2**64, 2**63 - 1, -(2**63)]},
        tool_calls=[ToolCallResult(id="c1", name="f", arguments={"n": 10**30})],
        usage={"total_tokens": 12},
    )


async def test_big_ints_are_stored_exactly(cache_factory: CacheFactory) -> None:
    """an int beyond 64 bits in parsed or tool-call arguments made put() raise
    ``Integer value out of range`` even with "miss". Now it is stored and read back
    exactly (msgpack extension type), in put, put_many and get_or_compute."""
    c = cache_factory()
    resp = _big_int_response()
    await c.put(*req(1), resp)
    got = await c.get(*req(1))
    assert got == resp and got.parsed["id"] == 2**70
    assert got.tool_calls[0].arguments["n"] == 10**30
    await c.put_many([(*req(2), resp)])
    assert await c.get_many([req(2)]) == [resp]


async def test_get_or_compute_returns_its_answer_whatever_happens(
    cache_factory: CacheFactory,
) -> None:
    """get_or_compute raised that error after compute() ran, throwing the answer
    away. Now the caller gets its answer whether or not it could be stored."""
    c = cache_factory(on_error="raise", max_entry_bytes=4096, compress_threshold=None)
    resp = _big_int_response()
    assert await c.get_or_compute(*req(1), _const_compute(c, resp)) == resp
    assert await c.get(*req(1)) == resp  # and it was stored
    huge = LLMResponse(content="x" * 10_000)  # over max_entry_bytes: returned, not stored
    assert await c.get_or_compute(*req(2), _const_compute(c, huge)) == huge
    assert await c.get(*req(2)) is None


async def test_large_raw_is_dropped_before_the_size_limit(cache_factory: CacheFactory) -> None:
    """a large ``raw`` pushed the entry over max_entry_bytes and the whole entry
    was skipped (the README: put never fails because of raw). Now raw goes first."""
    c = cache_factory(max_entry_bytes=4096, compress_threshold=None)
    resp = LLMResponse(content="the answer", raw={"provider": "y" * 10_000})
    await c.put(*req(1), resp)
    assert await c.get(*req(1)) == LLMResponse(content="the answer")
    await c.put_many([(*req(2), resp)])
    assert await c.get(*req(2)) == LLMResponse(content="the answer")
    assert await c.get_or_compute(*req(3), _const_compute(c, resp)) == resp
    assert await c.get(*req(3)) == LLMResponse(content="the answer")


# -- decompression bombs ----------------------------------------------------------------------


def zlib_bomb(inflated: int) -> bytes:
    """An envelope whose compressed body (zeros, level 9) inflates to ``inflated`` bytes."""
    packer = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    body = b"".join(packer.compress(chunk) for _ in range(inflated >> 20)) + packer.flush()
    return HEADER.pack(b"FC", 1, 1, 5) + body


BOMB = zlib_bomb(64 << 20)  # ~65 KB that inflates to 64 MiB


def test_decompression_is_bounded_by_max_entry_bytes(backend: Any, prefix: str, r: Any) -> None:
    """a 65 KB entry inflating to 64 MB cost ~1.2 s and ~745 MB per get. Now
    decompression stops at max_entry_bytes: a cheap counted corrupt miss (memory measured
    with tracemalloc; the old decode allocated the whole 64 MiB and more)."""
    assert len(BOMB) < 70_000
    with RedisExactCache(
        url=backend.url, key_prefix=prefix, on_error="raise", **backend.cache_defaults
    ) as c:
        c.put(*req(1), response(1))
        entry = c._core.keys.entry(*c._core.request(req(1))[:0:-1])
        r.set(entry, BOMB)
        tracemalloc.start()
        try:
            t0 = time.perf_counter()
            got = c.get(*req(1))
            took = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert got is None
        assert peak < 24 << 20, f"peak {peak / 2**20:.1f} MiB"  # default limit is 8 MiB
        print(
            f"bomb: {len(BOMB)} B -> 64 MiB; get {took * 1000:.1f} ms, peak {peak / 2**20:.1f} MiB"
        )
        fs = c.fleet_stats()
        assert (fs.hits, fs.misses, fs.corrupt) == (0, 1, 1)
        assert not r.exists(entry)


# -- single-flight ----------------------------------------------------------------------------


def _timed_compute(c: Flavor, value: Any, delay: float, log: list[tuple[float, float]]) -> Any:
    lock = threading.Lock()

    def note(t0: float) -> None:
        with lock:
            log.append((t0, time.monotonic()))

    if c.is_async:

        async def acompute() -> Any:
            t0 = time.monotonic()
            await asyncio.sleep(delay)
            note(t0)
            return value

        return acompute

    def compute() -> Any:
        t0 = time.monotonic()
        time.sleep(delay)
        note(t0)
        return value

    return compute


async def _crowd(c: Flavor, n: int, compute: Any, **kw: Any) -> list[Any]:
    fields = req("flight")
    if c.is_async:
        return list(
            await asyncio.gather(
                *(c.cache.get_or_compute(*fields, compute, **kw) for _ in range(n))
            )
        )
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: c.cache.get_or_compute(*fields, compute, **kw), range(n)))


async def test_uncacheable_answer_does_not_make_waiters_queue(
    cache_factory: CacheFactory,
) -> None:
    """an answer over max_entry_bytes made every waiter take the lease in turn and
    compute (6 x 0.3 s: the slowest waited 1.87 s). Now the holder leaves an "uncacheable"
    marker: the waiters compute at once, side by side (every waiter's compute starts before
    any of them has finished), and every caller gets an answer."""
    c = cache_factory(max_entry_bytes=4096, compress_threshold=None, socket_timeout=5)
    await c.size()
    huge = LLMResponse(content="x" * 10_000)
    log: list[tuple[float, float]] = []
    got = await _crowd(c, 6, _timed_compute(c, huge, 0.5, log))
    assert got == [huge] * 6
    log.sort()
    holder, waiters = log[0], log[1:]
    assert waiters, "no caller waited"
    first_waiter_done = min(end for _start, end in waiters)
    assert all(start < first_waiter_done for start, _end in waiters), log
    assert all(start >= holder[1] - 0.05 for start, _end in waiters)  # they did wait first


async def test_slow_holder_keeps_its_lease(cache_factory: CacheFactory, r: Any) -> None:
    """a holder alive but slower than lease_seconds lost its lease (no renewal):
    6 callers made 2-3 LLM calls. Now the holder renews while compute runs: 1 compute."""
    c = cache_factory(socket_timeout=5)
    await c.size()
    log: list[tuple[float, float]] = []
    got = await _crowd(c, 6, _timed_compute(c, response("slow"), 1.0, log), lease_seconds=0.3)
    assert got == [response("slow")] * 6
    assert len(log) == 1, log
    fs = await c.fleet_stats()
    assert (fs.puts, fs.coalesced) == (1, 5)
    core = c.cache._core
    _req, digest, shard = core.request(req("flight"))
    assert not r.exists(core.keys.lease(shard, digest))  # released after the store


# -- TTLs the server cannot honour ------------------------------------------------------------


async def test_ttl_beyond_what_redis_honours_is_refused_at_the_call(
    cache_factory: CacheFactory, r: Any
) -> None:
    """ttl_seconds=1e15 was accepted, then every put was silently skipped (Redis
    rejects the expiry). Now a ValueError at the call, with the limit in the message."""
    with pytest.raises(ValueError, match=r"at most 1e\+12 s"):
        cache_factory.raw_cache(ttl_seconds=1e15)
    c = cache_factory()
    with pytest.raises(ValueError, match=r"at most 1e\+12 s"):
        await c.put(*req(1), response(1), ttl_seconds=1e15)
    with pytest.raises(ValueError, match=r"at most 1e\+12 s"):
        await c.put_many([(*req(1), response(1))], ttl_seconds=10**16)
    with pytest.raises(ValueError, match=r"lease_seconds must be at most 1e\+12 s"):
        await c.get_or_compute(*req(1), _const_compute(c, response(1)), lease_seconds=1e13)
    longest = cache_factory(ttl_seconds=1e12)  # the limit itself is honoured exactly
    await longest.put(*req(2), response(2))
    assert await longest.get(*req(2)) == response(2)
    assert r.pttl(longest.keys_of(*req(2))[0]) > 999_999_000_000_000


# -- a stricter response_model ----------------------------------------------------------------


class StrictResponse(BaseModel):
    """A stricter model mid-rollout: every entry needs a ``verdict``."""

    content: str | None = None
    verdict: str
    usage: dict[str, int] = {}


async def test_stricter_model_misses_without_deleting(cache_factory: CacheFactory, r: Any) -> None:
    """a validation failure under a stricter response_model is a miss
    that keeps the entry (counted ``rejected``): before, it was deleted as corrupt, so a
    fleet mid-rollout wiped the entries its other processes still read. Undecodable bytes
    are still deleted and counted corrupt."""
    old = cache_factory()
    new = cache_factory(response_model=StrictResponse)
    await old.put(*req(1), response(1, tokens=30))
    assert await new.get(*req(1)) is None
    assert await old.get(*req(1)) == response(1, tokens=30)  # kept for the old model
    await old.reset_stats()
    assert await new.get_many([req(1)]) == [None]
    fresh = StrictResponse(content="new", verdict="ok")
    # single-flight: computes its own answer (no lease to wait for), and stores it
    assert await new.get_or_compute(*req(1), _const_compute(new, fresh)) == fresh
    fs = await old.fleet_stats()
    assert (fs.rejected, fs.corrupt, fs.hits, fs.tokens_saved) == (2, 0, 0, 0)
    assert await new.get(*req(1)) == fresh

    await old.put(*req(2), response(2))
    assert await new.get(*req(2)) is None  # rejected, kept: the old model still reads it
    assert await old.get(*req(2)) == response(2)
    entry = old.keys_of(*req(3))[0]
    await old.put(*req(3), response(3))
    r.set(entry, HEADER.pack(b"FC", 1, 0, 0) + msgpack.packb([1, 2]))  # not a map: corrupt
    assert await new.get(*req(3)) is None
    assert not r.exists(entry)
    fs = await old.fleet_stats()
    assert (fs.rejected, fs.corrupt) == (3, 1)
