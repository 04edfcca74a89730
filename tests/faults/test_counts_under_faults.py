"""Counts stay exact and no answer is lost under faults, each scenario on its own private
server: the layout record lost while a fleet runs (kill -9 + restart without persistence,
then the record deleted twice more, with ``fleetcache stats`` looking all along), a server
stalling during calls, hostile wrong-type keys under single and batch reads, and
decompression bombs. Every scenario records its
operations, failures, lost answers (``data_lost``) and counter error, all 0 when it passes.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import tracemalloc
import zlib
from typing import Any

import pytest

from fleetcache import LLMResponse, RedisExactCache
from fleetcache.cli import main
from fleetcache.core.envelope import HEADER

from ..support.threads import ThreadGroup, wait_until

pytestmark = pytest.mark.faults

KEYS = 20


def req(i: int) -> tuple[str, str, str, float, int]:
    return (f"question {i}", "sys", "m", 0.0, 64)


def resp(i: int) -> LLMResponse:
    return LLMResponse(content=f"answer {i}", usage={"total_tokens": 7})


class Fleet(ThreadGroup):
    """Threads doing get/put (and, with ``batch``, get_many of 4) on one cache object over
    ``KEYS`` keys, tallying what they issued and what they were given."""

    def __init__(self, cache: RedisExactCache, threads: int = 4, batch: bool = False) -> None:
        super().__init__()
        self.cache = cache
        self.batch = batch
        self.lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.gets = self.puts = self.delivered = self.wrong = 0
        self.slowest = 0.0
        self.spawn(threads, self._run)

    def _run(self, w: int) -> None:
        i = w
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            i += 1
            t0 = time.monotonic()
            keys = [(i + j) % KEYS for j in range(4)] if self.batch and i % 2 else [i % KEYS]
            try:
                if i % 3 == 0:
                    self.cache.put(*req(keys[0]), resp(keys[0]))
                    with self.lock:
                        self.puts += 1
                        self.slowest = max(self.slowest, time.monotonic() - t0)
                    continue
                if len(keys) > 1:
                    got = self.cache.get_many([req(k) for k in keys])
                else:
                    got = [self.cache.get(*req(keys[0]))]
            except BaseException as exc:  # anything reaching the caller is a failure
                with self.lock:
                    self.errors.append(exc)
                return
            with self.lock:
                self.slowest = max(self.slowest, time.monotonic() - t0)
                self.gets += len(keys)
                for k, g in zip(keys, got, strict=True):
                    if g is not None:
                        self.delivered += 1
                        self.wrong += int(g != resp(k))
            time.sleep(0.001)

    @property
    def ops(self) -> int:
        with self.lock:
            return self.gets + self.puts


def cli_stats(url: str, prefix: str) -> int:
    """``fleetcache stats --json`` in-process, its output swallowed; the exit code."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(["stats", "--json", "--url", url, "--prefix", prefix])


def test_layout_record_lost_while_a_fleet_runs(server_factory: Any, record: dict[str, Any]) -> None:
    """Invariant: the layout record of a running 4-shard fleet is lost (kill -9 + restart
    without persistence, then deleted twice more mid-run) while ``fleetcache stats`` looks
    every 50 ms: looking never writes a layout, no data call raises or records another
    layout, a newcomer with shards=4 is served, the fleet re-records its layout, and the
    counters equal what the fleet issued after the restart."""
    record.update(
        name="layout record lost while a fleet runs",
        invariant="looking never writes; no call raises; the fleet re-records shards=4; "
        "counters == calls issued",
    )
    srv = server_factory()
    prefix = "meta"
    meta = "{meta}:meta"
    cache = RedisExactCache(url=srv.url, key_prefix=prefix, shards=4, breaker_seconds=0)
    for i in range(KEYS):
        cache.put(*req(i), resp(i))
    srv.kill()
    srv.start()
    r = srv.client()
    assert not r.exists(meta)
    assert wait_until(lambda: cache.get(*req(0)) is None)  # the cache reconnected
    errors_before = cache.error_count  # the kill -9 itself, if a call saw it
    before = cache.fleet_stats()
    assert before.puts + before.hits + before.misses <= 1
    looks = bad_layouts = 0
    with Fleet(cache) as fleet:
        deadline = time.monotonic() + 3.0
        deletes = 0
        while time.monotonic() < deadline:
            code = cli_stats(srv.url, prefix)
            looks += 1
            bad_layouts += int(code not in (0, 1, 4))  # ok, layout unknown, no namespace yet
            layout = r.get(meta)
            bad_layouts += int(layout not in (None, b"fleetcache-1;shards=4"))
            if deletes < 2 and time.monotonic() > deadline - 2.0 + deletes:
                r.delete(meta)  # an eviction of the record, mid-run
                deletes += 1
            time.sleep(0.05)
    ops = fleet.ops + looks
    with RedisExactCache(url=srv.url, key_prefix=prefix, shards=4, on_error="raise") as newcomer:
        served = sum(int(newcomer.get(*req(i)) == resp(i)) for i in range(KEYS))
        ops += KEYS
    cache.put(*req(0), resp(0))
    after = cache.fleet_stats()
    counter_error = abs(after.puts - before.puts - fleet.puts - 1) + abs(
        after.hits + after.misses - before.hits - before.misses - fleet.gets - KEYS
    )
    layout_faults = cache.error_count - errors_before
    failures = len(fleet.errors) + bad_layouts + fleet.wrong + layout_faults
    record.update(operations=ops, failures=failures, data_lost=KEYS - served)
    record.update(counter_error=counter_error, stats_looks=looks, record_deletes=deletes)
    assert not fleet.errors, fleet.errors[:3]
    assert bad_layouts == 0 and fleet.wrong == 0
    assert r.get(meta) == b"fleetcache-1;shards=4"
    assert served == KEYS
    assert counter_error == 0, (after, fleet.gets, fleet.puts)
    assert layout_faults == 0  # no data call met a layout problem
    assert cli_stats(srv.url, prefix) == 0
    r.close()
    cache.close()


def test_stall_during_calls_counts_once(server_factory: Any, record: dict[str, Any]) -> None:
    """Invariant: the server stalls 0.45 s (DEBUG SLEEP) ten times while four threads get
    and put: every call returns within the fail-open bound, nothing raises, and no call is
    counted twice (a timed-out call is never re-sent). A call counts once, or not at all
    when it failed before its command left (a new connection's handshake timed out): the
    uncounted calls are at most the failed ones."""
    record.update(
        name="stall during calls (0.45 s, x10)",
        invariant="calls bounded; nothing raises; no double count: calls issued - failed "
        "<= counted <= calls issued",
    )
    srv = server_factory("--enable-debug-command", "yes")
    admin = srv.client()
    cache = RedisExactCache(url=srv.url, key_prefix="stall", breaker_seconds=0)
    for i in range(KEYS):
        cache.put(*req(i), resp(i))
    cache.reset_stats()
    with Fleet(cache) as fleet:
        for _ in range(10):
            admin.execute_command("DEBUG", "SLEEP", 0.45)
            time.sleep(0.15)
    time.sleep(0.1)
    fs = cache.fleet_stats()
    counted, issued = fs.puts + fs.hits + fs.misses, fleet.puts + fleet.gets
    never_sent = issued - counted  # failed before the command was written
    counter_error = max(0, counted - issued) + max(0, never_sent - cache.error_count)
    # a get that timed out was still counted (its reply was lost on the way: documented);
    # every other hit reached its caller
    undelivered = fs.hits - fleet.delivered
    served = sum(int(cache.get(*req(i)) == resp(i)) for i in range(KEYS))
    record.update(
        operations=fleet.ops + KEYS,
        failures=len(fleet.errors) + fleet.wrong,
        data_lost=KEYS - served,
        counter_error=counter_error,
        hits_counted_not_delivered_by_timeouts=undelivered,
        calls_failed=cache.error_count,
        calls_never_sent=never_sent,
        slowest_call_s=round(fleet.slowest, 3),
    )
    assert not fleet.errors, fleet.errors[:3]
    assert fleet.wrong == 0 and served == KEYS
    assert counter_error == 0, (fs, fleet.gets, fleet.puts, cache.error_count)
    assert cache.error_count > 0, "no call ever met a stall"
    assert fleet.slowest < 1.25, fleet.slowest  # the fail-open bound (~0.5 s) + margin
    admin.close()
    cache.close()


PLANT = (
    lambda r, key: r.hset(key, "x", "1"),
    lambda r, key: r.rpush(key, "x"),
    lambda r, key: r.sadd(key, "x"),
)


def test_hostile_wrong_type_keys(server_factory: Any, record: dict[str, Any]) -> None:
    """Invariant: another client keeps turning entry keys into hashes, lists and sets while
    threads get (single and get_many of 4) and put with on_error="raise": nothing raises,
    every answer delivered is the right one, hits counted == answers delivered, hits +
    misses == requests issued, and each wrong-type key read is repaired (counted corrupt)."""
    record.update(
        name="hostile wrong-type keys (single + batch)",
        invariant='nothing raises (on_error="raise"); hits == answers delivered; '
        "hits + misses == requests; wrong-type keys repaired, counted corrupt",
    )
    srv = server_factory()
    r = srv.client()
    cache = RedisExactCache(url=srv.url, key_prefix="wt", on_error="raise")
    k = cache._core.keys
    entries = [k.entry(0, cache._core.request(req(i))[1]) for i in range(KEYS)]
    for i in range(KEYS):
        cache.put(*req(i), resp(i))
    cache.reset_stats()
    planted = 0
    with Fleet(cache, batch=True) as fleet:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            key = entries[planted % KEYS]
            with r.pipeline(transaction=True) as tx:  # atomic: a put may land in between
                tx.delete(key)
                PLANT[planted % 3](tx, key)
                tx.execute()
            planted += 1
            time.sleep(0.005)
    fs = cache.fleet_stats()
    counter_error = abs(fs.hits + fs.misses - fleet.gets) + abs(fs.hits - fleet.delivered)
    leftovers = sum(int(r.type(e) not in (b"string", b"none")) for e in entries)
    for i in range(KEYS):  # the last plants nobody read yet: one read repairs each
        got = cache.get(*req(i))
        fleet.wrong += int(got is not None and got != resp(i))
    still_bad = sum(int(r.type(e) not in (b"string", b"none")) for e in entries)
    record.update(
        operations=fleet.ops + planted + KEYS,
        failures=len(fleet.errors) + fleet.wrong + still_bad,
        counter_error=counter_error,
        wrong_type_keys_planted=planted,
        corrupt_counted=cache.fleet_stats().corrupt,
    )
    assert not fleet.errors, fleet.errors[:3]
    assert fleet.wrong == 0
    assert counter_error == 0, (fs, fleet.gets, fleet.delivered)
    assert still_bad == 0, (leftovers, still_bad)
    assert cache.fleet_stats().corrupt > 0
    r.close()
    cache.close()


def _bomb(inflated: int) -> bytes:
    packer = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    body = b"".join(packer.compress(chunk) for _ in range(inflated >> 20)) + packer.flush()
    return HEADER.pack(b"FC", 1, 1, 5) + body


def test_decompression_bombs(server_factory: Any, record: dict[str, Any]) -> None:
    """Invariant: entries that inflate to 64 MiB and 256 MiB (65 KB / 260 KB in Redis) are
    cheap counted corrupt misses, single and batch: memory stays bounded by max_entry_bytes
    (tracemalloc peak), every bomb is dropped, the honest entries are served."""
    record.update(
        name="decompression bombs (64 MiB, 256 MiB)",
        invariant="corrupt miss, dropped; peak memory bounded by max_entry_bytes; "
        "honest entries served",
    )
    srv = server_factory()
    r = srv.client()
    cache = RedisExactCache(url=srv.url, key_prefix="bomb", on_error="raise")
    k = cache._core.keys
    bombs = {64: _bomb(64 << 20), 256: _bomb(256 << 20)}
    for i in range(KEYS):
        cache.put(*req(i), resp(i))
    cache.reset_stats()
    slowest = 0.0
    peak = 0
    ops = gets = wrong = 0
    for rnd in range(3):
        planted = []
        for j, size in enumerate((64, 256, 64, 256)):
            i = (rnd * 4 + j) % KEYS
            r.set(k.entry(0, cache._core.request(req(i))[1]), bombs[size])
            planted.append(i)
        tracemalloc.start()
        try:
            t0 = time.perf_counter()
            if rnd == 1:
                got = cache.get_many([req(i) for i in range(KEYS)])
            else:
                got = [cache.get(*req(i)) for i in range(KEYS)]
            ops += KEYS
            gets += KEYS
            slowest = max(slowest, (time.perf_counter() - t0) / 4)
            peak = max(peak, tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        for i, g in enumerate(got):
            wrong += int(g is not None) if i in planted else int(g != resp(i))
        for i in planted:
            cache.put(*req(i), resp(i))
            ops += 1
    fs = cache.fleet_stats()
    record.update(
        operations=ops,
        failures=wrong,
        counter_error=abs(fs.corrupt - 12) + abs(fs.hits + fs.misses - gets),
        bomb_bytes={"64MiB": len(bombs[64]), "256MiB": len(bombs[256])},
        seconds_per_bomb_max=round(slowest, 4),
        peak_mib=round(peak / 2**20, 1),
    )
    assert wrong == 0
    assert fs.corrupt == 12
    assert peak < 3 * cache._core.max_entry_bytes, peak
    r.close()
    cache.close()
