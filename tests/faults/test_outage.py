"""Outages: kill -9 and restart, a stalled server, SCRIPT FLUSH mid-run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from fleetcache import CacheUnavailableError, LLMResponse, RedisExactCache

from ..support.proxy import StallProxy
from ..support.threads import ThreadGroup, wait_until

pytestmark = pytest.mark.faults

RESP = LLMResponse(content="the answer", usage={"total_tokens": 12})
#: The documented bound: 0.25 s socket timeout, one retry -> ~0.5 s; plus scheduling margin.
CALL_BOUND = 1.25


def req(i: int) -> tuple[str, str, str, float, int]:
    return (f"question {i}", "sys", "m", 0.0, 64)


class Workers(ThreadGroup):
    """Threads running get/put on one cache object; every exception is kept."""

    def __init__(self, cache: RedisExactCache, n: int = 4, keys: int = 20) -> None:
        super().__init__()
        self.cache = cache
        self.errors: list[BaseException] = []
        self.ops = 0
        self.slowest = 0.0
        self.calls: list[tuple[float, float, Any]] = []  # (start, end, get result)
        self._lock = threading.Lock()
        self.spawn(n, self._run, keys)

    def _run(self, w: int, keys: int) -> None:
        i = w
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            i += 1
            t0 = time.monotonic()
            try:
                if i % 3 == 0:
                    self.cache.put(*req(i % keys), RESP)
                    got: Any = "put"
                else:
                    got = self.cache.get(*req(i % keys))
            except BaseException as exc:  # any exception reaching the caller is a failure
                with self._lock:
                    self.errors.append(exc)
                return
            t1 = time.monotonic()
            with self._lock:
                self.ops += 1
                self.slowest = max(self.slowest, t1 - t0)
                self.calls.append((t0, t1, got))
            time.sleep(0.001)


def test_kill9_and_restart(server_factory: Any, record: dict[str, Any]) -> None:
    """Invariant: kill -9 mid-run -> no exception reaches a caller, gets during the outage
    are misses, calls stay bounded; after a restart on the same port the same cache object
    serves again."""
    record.update(
        name="kill -9 + restart",
        invariant="no exception reaches the caller; outage gets are misses; the same "
        "cache object serves again after restart",
    )
    srv = server_factory()
    cache = RedisExactCache(url=srv.url, key_prefix="k9")
    for i in range(20):
        cache.put(*req(i), RESP)
    with Workers(cache) as w:
        assert wait_until(lambda: w.ops > 100)
        srv.kill()
        killed = time.monotonic()
        time.sleep(1.5)
        srv.start()
        restarted = time.monotonic()
        cache.put(*req(0), RESP)  # may be skipped by the open breaker

        def put_then_get() -> bool:
            cache.put(*req(0), RESP)
            return cache.get(*req(0)) == RESP

        served = wait_until(put_then_get)
        ops_after = w.ops
        assert wait_until(lambda: w.ops > ops_after + 50)
    outage_hits = [c for c in w.calls if c[0] > killed and c[1] < restarted and c[2] not in
                   (None, "put")]  # fmt: skip
    record.update(operations=w.ops, failures=len(w.errors) + len(outage_hits))
    record["data_lost"] = 0  # the server has no persistence: losing entries is expected
    assert not w.errors, w.errors[:3]
    assert not outage_hits
    assert served, "the cache did not serve again after the restart"
    assert w.slowest < CALL_BOUND, w.slowest
    assert cache.get(*req(0)) == RESP
    assert cache.error_count > 0  # the outage was seen (and logged), not hidden
    cache.close()


def test_stalled_server_calls_are_bounded(server_factory: Any, record: dict[str, Any]) -> None:
    """Invariant: with a server that accepts but never answers, every call returns within
    the documented timeout (~0.5 s for URL-built clients) plus a margin; data calls are a
    miss/skip, management calls raise CacheUnavailableError; forwarding again -> serves."""
    record.update(
        name="stalled server (TCP proxy)",
        invariant=f"every call returns within {CALL_BOUND} s; gets miss, puts skip; "
        "management calls raise CacheUnavailableError",
    )
    srv = server_factory()
    proxy = StallProxy(srv.port)
    ops = 0
    failures = 0
    try:
        caches = [
            RedisExactCache(url=proxy.url, key_prefix="st"),
            RedisExactCache(url=proxy.url, key_prefix="st", breaker_seconds=0),
        ]
        for c in caches:
            c.put(*req(1), RESP)
            assert c.get(*req(1)) == RESP
        proxy.stall()
        slowest = 0.0
        for c in caches:
            for i in range(6):
                calls: tuple[Callable[[], object], ...] = (
                    partial(c.get, *req(1)),
                    partial(c.put, *req(i), RESP),
                    partial(c.invalidate, *req(2)),
                )
                for call in calls:
                    t0 = time.monotonic()
                    out = call()
                    slowest = max(slowest, time.monotonic() - t0)
                    ops += 1
                    if out not in (None, False):
                        failures += 1
            t0 = time.monotonic()
            with pytest.raises(CacheUnavailableError):
                len(c)
            slowest = max(slowest, time.monotonic() - t0)
            ops += 1
        proxy.resume()
        for c in caches:
            assert wait_until(lambda c=c: c.get(*req(1)) == RESP)
            c.close()
        record.update(operations=ops, failures=failures + int(slowest >= CALL_BOUND))
        record["slowest_call_s"] = round(slowest, 3)
        assert slowest < CALL_BOUND, slowest
        assert failures == 0
    finally:
        proxy.close()


def test_script_flush_mid_run(server_factory: Any, record: dict[str, Any]) -> None:
    """Invariant: SCRIPT FLUSH while workers run -> nothing fails (on_error="raise", so a
    failure could not hide), every get of a stored entry is a hit, counters stay exact."""
    record.update(
        name="SCRIPT FLUSH mid-run",
        invariant='nothing fails (on_error="raise"); every get is a hit; hits == gets',
    )
    srv = server_factory()
    r = srv.client()
    cache = RedisExactCache(url=srv.url, key_prefix="sf", on_error="raise")
    for i in range(20):
        cache.put(*req(i), RESP)
    cache.reset_stats()
    flushes = 0
    with Workers(cache) as w:
        for _ in range(20):
            r.script_flush()
            flushes += 1
            time.sleep(0.03)
        n = w.ops
        assert wait_until(lambda: w.ops > n + 20)
    gets = sum(1 for c in w.calls if c[2] != "put")
    misses = sum(1 for c in w.calls if c[2] is None)
    stats = cache.fleet_stats()
    record.update(operations=w.ops, failures=len(w.errors) + misses)
    record["data_lost"] = abs(stats.hits - gets)
    record["script_flushes"] = flushes
    assert not w.errors, w.errors[:3]
    assert misses == 0
    assert stats.hits == gets and stats.misses == 0
    cache.close()
    r.close()
