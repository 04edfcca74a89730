"""fleetcache benchmarks: the limit (raw redis-py GET/SET, redis-benchmark), the incumbent
(``ractogateway.redis.RedisExactCache``) and fleetcache, side by side, in one run, against one
private ``redis-server`` that this script starts on a free loopback port and stops by PID.

    python bench/run.py [--quick | --full]      (or BENCH_MODE=quick|full; default quick)
    python bench/run.py --render                re-write RESULTS.md/chart from results.json
                                                (and the fault suite's summary)

Throughput numbers are the median of repeated timed windows; the contestants are measured
interleaved (round-robin per repetition) so that noise from a shared machine hits them alike.
Outputs: ``bench/RESULTS.md``, ``bench/results.json``, ``bench/results.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from tests.servers import ServerProc, redis_server_bin  # noqa: E402

from bench.payloads import request, response_fields  # noqa: E402

MODES: dict[str, dict[str, Any]] = {
    "quick": {
        "reps": 5,
        "window": 0.2,
        "size_points": (1_000, 10_000, 100_000, 1_000_000),
        "incumbent_size_cap": 100_000,
        "size_reps": 3,
        "mem_entries": 1_000,
        "cpu_ops": 2_000,
        "fleet_procs": (1, 2, 4, 8),
        "fleet_seconds": 1.5,
        "rb_requests": 20_000,
        "batches": (1, 10, 100),
    },
    "full": {
        "reps": 7,
        "window": 1.0,
        "size_points": (1_000, 10_000, 100_000, 1_000_000),
        "incumbent_size_cap": 1_000_000,
        "size_reps": 5,
        "mem_entries": 5_000,
        "cpu_ops": 10_000,
        "fleet_procs": (1, 2, 4, 8),
        "fleet_seconds": 4.0,
        "rb_requests": 100_000,
        "batches": (1, 10, 100),
    },
}
SIZES = (("1 KB", 1024), ("16 KB", 16384))

# The alternative way of serving a hit (measured against get-3.lua): the payload comes back
# from a plain GET inside MULTI/EXEC and a small script only counts (bench-only Lua).
COUNT_ONLY_LUA = """
local h = redis.call('GETRANGE', KEYS[1], 0, 7)
if string.len(h) == 8 and string.sub(h, 1, 3) == ARGV[2] then
  local b1, b2, b3, b4 = string.byte(h, 5, 8)
  local tokens = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
  redis.pcall('HINCRBY', KEYS[2], 'hits', 1)
  redis.pcall('HINCRBY', KEYS[2], 'mh:' .. ARGV[1], 1)
  if tokens > 0 then redis.pcall('HINCRBY', KEYS[2], 'tokens_saved', tokens) end
  return 1
end
redis.pcall('HINCRBY', KEYS[2], 'misses', 1)
redis.pcall('HINCRBY', KEYS[2], 'mm:' .. ARGV[1], 1)
return 0
"""

# Fills a namespace server-side (bench only: writes keys it does not declare, standalone
# server). fleetcache layout: entry + index member; incumbent layout: one JSON key.
FILL_FLEET_LUA = """
local base, n0, n1, val = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local members = {}
for i = n0, n1 - 1 do
  local d = string.format('%032x', i)
  redis.call('SET', base .. 'e:' .. d, val)
  members[#members + 1] = 'inf'
  members[#members + 1] = d
  if #members >= 1000 then
    redis.call('ZADD', KEYS[1], unpack(members))
    members = {}
  end
end
if #members > 0 then redis.call('ZADD', KEYS[1], unpack(members)) end
return n1 - n0
"""
FILL_INCUMBENT_LUA = """
local base, n0, n1, val = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
for i = n0, n1 - 1 do
  redis.call('SET', base .. string.format('%064x', i), val)
end
return n1 - n0
"""


def log(msg: str) -> None:
    print(msg, flush=True)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


# -- timing helpers -------------------------------------------------------------------------


def timed_rate(fn: Callable[[], Any], seconds: float, max_ops: int = 2_000_000) -> float:
    """Ops/s of ``fn`` over a window of ``seconds`` (bounded by ``max_ops``)."""
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while n < max_ops:
        for _ in range(20):
            fn()
        n += 20
        if time.perf_counter() >= deadline:
            break
    return n / (time.perf_counter() - t0)


def interleaved(
    contestants: dict[str, Callable[[], float]], reps: int
) -> dict[str, dict[str, float]]:
    """Run each contestant's measurement ``reps`` times round-robin; median and spread."""
    runs: dict[str, list[float]] = {k: [] for k in contestants}
    for _ in range(reps):
        for name, measure in contestants.items():
            runs[name].append(measure())
    return {
        k: {"median": median(v), "min": min(v), "max": max(v), "n": len(v)} for k, v in runs.items()
    }


def paired(fns: dict[str, Callable[[], Any]], seconds: float, block: int = 10) -> dict[str, float]:
    """Ops/s of several operations measured in alternating blocks of ``block`` calls, each
    one's time summed separately: slow drift and bursts of load from other processes hit all
    of them alike, so their ratios are steadier than those of separate windows."""
    spent = dict.fromkeys(fns, 0.0)
    done = dict.fromkeys(fns, 0)
    deadline = time.perf_counter() + seconds * len(fns)
    rounds = 0
    while time.perf_counter() < deadline and rounds < 200_000:
        rounds += 1
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(block):
                fn()
            spent[name] += time.perf_counter() - t0
            done[name] += block
    return {k: done[k] / spent[k] for k in fns}


def time_call(fn: Callable[[], Any], reps: int) -> float:
    """Median wall time of ``fn`` in ms."""
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return median(out)


# -- contestants ------------------------------------------------------------------------------


class Bench:
    def __init__(self, server: ServerProc, mode: dict[str, Any]) -> None:
        self.server = server
        self.mode = mode
        self.url = server.url
        self.r = redis.Redis.from_url(self.url, decode_responses=False)
        self.results: dict[str, Any] = {}

    # setup of one payload size -------------------------------------------------------------

    def models(self, size: int) -> tuple[Any, Any]:
        from ractogateway.adapters.base import LLMResponse as IncResponse

        from fleetcache import LLMResponse

        fields = response_fields(size)
        return LLMResponse.model_validate(fields), IncResponse.model_validate(fields)

    def ops_throughput(self) -> None:
        """Single-client ops/s of every contestant at 1 KB and 16 KB."""
        from ractogateway.redis import RedisExactCache as Incumbent

        from fleetcache import AsyncRedisExactCache, RedisExactCache

        reps, win = self.mode["reps"], self.mode["window"]
        out: dict[str, Any] = {}
        loop = asyncio.new_event_loop()
        for label, size in SIZES:
            log(f"  throughput at {label} ...")
            fc_resp, inc_resp = self.models(size)
            pfx = f"bench:{size}"
            fc = RedisExactCache(url=self.url, key_prefix=f"{pfx}:fc")
            afc = AsyncRedisExactCache(url=self.url, key_prefix=f"{pfx}:fc")
            inc_url = Incumbent(url=self.url, key_prefix=f"{pfx}:inc")
            inc_cli = Incumbent(client=self.r, key_prefix=f"{pfx}:inc")
            req = request()
            miss_req = request(10**9)
            fc.put(*req, fc_resp)
            inc_cli.put(*req, inc_resp)
            core = fc._core
            _, digest, shard = core.request(req)
            entry_key = core.keys.entry(shard, digest)
            payload = self.r.get(entry_key)
            assert payload is not None
            inc_key = f"{pfx}:inc:" + _inc_digest(req)
            inc_bytes = self.r.get(inc_key)
            assert inc_bytes is not None
            raw_key = f"{pfx}:raw"
            self.r.set(raw_key, payload)
            count_sha = self.r.script_load(COUNT_ONLY_LUA)
            from fleetcache._codec import ACCEPT_PREFIX

            def multi_get() -> Any:
                # the alternative hit path, with the same client-side work as cache.get
                rq, dg, sh = core.request(req)
                pipe = fc.client.pipeline(transaction=True)
                pipe.get(core.keys.entry(sh, dg))
                pipe.evalsha(count_sha, 2, core.keys.entry(sh, dg), core.keys.stats(sh),
                             rq[2], ACCEPT_PREFIX)  # fmt: skip
                raw, _ = pipe.execute()
                return core.codec.decode(raw) if raw is not None else None

            assert multi_get() == fc_resp
            assert fc.get(*req) == fc_resp
            assert inc_cli.get(*req) is not None

            async def aloop(fn: Callable[[], Any], seconds: float) -> float:
                n = 0
                t0 = time.perf_counter()
                deadline = t0 + seconds
                while n < 2_000_000:
                    for _ in range(20):
                        await fn()
                    n += 20
                    if time.perf_counter() >= deadline:
                        break
                return n / (time.perf_counter() - t0)

            loop.run_until_complete(afc.get(*req))  # connect + layout check
            araw = afc.client  # the same redis.asyncio client fleetcache uses

            c = self.r
            fc_get = fc.get
            gcall = core.get_call(*core.request(req))
            get_args = (gcall.script.sha, len(gcall.keys), *gcall.keys, *gcall.args)
            contestants: dict[str, Callable[[], float]] = {
                "raw GET": lambda: timed_rate(lambda: c.get(raw_key), win),
                "raw SET": lambda: timed_rate(lambda: c.set(raw_key, payload), win),
                "raw async GET": lambda: loop.run_until_complete(
                    aloop(lambda: araw.get(raw_key), win)
                ),
                "fleetcache get hit": lambda: timed_rate(lambda: fc_get(*req), win),
                "fleetcache get hit (MULTI/GET/count/EXEC)": lambda: timed_rate(multi_get, win),
                "fleetcache get miss": lambda: timed_rate(lambda: fc_get(*miss_req), win),
                "fleetcache put": lambda: timed_rate(lambda: fc.put(*req, fc_resp), win),
                "fleetcache async get hit": lambda: loop.run_until_complete(
                    aloop(lambda: afc.get(*req), win)
                ),
                "fleetcache async get miss": lambda: loop.run_until_complete(
                    aloop(lambda: afc.get(*miss_req), win)
                ),
                "fleetcache async put": lambda: loop.run_until_complete(
                    aloop(lambda: afc.put(*req, fc_resp), win)
                ),
                "incumbent get hit (client=)": lambda: timed_rate(lambda: inc_cli.get(*req), win),
                "incumbent get hit (url=, as shipped)": lambda: timed_rate(
                    lambda: inc_url.get(*req), win, max_ops=4_000
                ),
                "incumbent put (client=)": lambda: timed_rate(
                    lambda: inc_cli.put(*req, inc_resp), win
                ),
                "incumbent put (url=, as shipped)": lambda: timed_rate(
                    lambda: inc_url.put(*req, inc_resp), win, max_ops=4_000
                ),
            }
            if hasattr(fc, "get_many"):
                contestants.update(self.get_many_contestants(fc, fc_resp, win, pfx))
            res = interleaved(contestants, reps)
            pair = paired(
                {
                    "raw GET": lambda: c.get(raw_key),
                    "bare EVALSHA get-3 (no client work)": lambda: c.evalsha(*get_args),
                    "fleetcache get hit": lambda: fc_get(*req),
                    "fleetcache get hit (MULTI/GET/count/EXEC)": multi_get,
                    "incumbent get hit (client=)": lambda: inc_cli.get(*req),
                    "incumbent get hit (url=, as shipped)": lambda: inc_url.get(*req),
                },
                win * reps / 2,
            )
            out[label] = {
                "ops": res,
                "paired": pair,
                "bytes": {
                    "fleetcache envelope": len(payload),
                    "incumbent JSON": len(inc_bytes),
                },
            }
            fc.close()
            loop.run_until_complete(afc.aclose())
        loop.close()
        self.results["throughput"] = out

    def get_many_contestants(
        self, fc: Any, resp: Any, win: float, pfx: str
    ) -> dict[str, Callable[[], float]]:
        """get_many at batch sizes 1/10/100, reported as entries/s (if the API has it)."""
        out: dict[str, Callable[[], float]] = {}
        reqs = [request(i) for i in range(max(self.mode["batches"]))]
        for rq in reqs:
            fc.put(*rq, resp)
        for b in self.mode["batches"]:
            batch = reqs[:b]
            try:
                got = fc.get_many(batch)
            except Exception as exc:  # API shape differs: report, do not fail the run
                log(f"  get_many skipped: {exc!r}")
                return {}
            if sum(1 for g in got if g is not None) != b:
                log("  get_many returned misses for stored entries; skipped")
                return {}
            out[f"fleetcache get_many x{b} (entries/s)"] = lambda batch=batch, b=b: (
                timed_rate(lambda: fc.get_many(batch), win) * b
            )
        return out

    # server ceiling --------------------------------------------------------------------------

    def client_work(self) -> None:
        """Client CPU per get hit without any network: the caches driven with stub clients
        that answer at once (best of repeated timeit runs, us per call)."""
        import timeit

        from ractogateway.redis import RedisExactCache as Incumbent

        from fleetcache import RedisExactCache

        fc_resp, inc_resp = self.models(1024)
        fc = RedisExactCache(client=self.r, key_prefix="cw:fc")
        req = request()
        fc.put(*req, fc_resp)
        assert fc.get(*req) == fc_resp
        core = fc._core
        env = core.codec.encode(fc_resp)
        inc_json = inc_resp.model_dump_json().encode()

        class Stub:
            def __init__(self, value: bytes) -> None:
                self.value = value

            def evalsha(self, *_: Any) -> bytes:
                return self.value

            def get(self, *_: Any) -> bytes:
                return self.value

        # a second cache object on the stub (the cache keeps one store per client); the
        # namespace layout was recorded by the real cache above
        fc = RedisExactCache(client=Stub(env), key_prefix="cw:fc")
        fc._core.layout_checked = True
        inc = Incumbent(client=Stub(inc_json), key_prefix="cw:inc")

        def best(fn: Callable[[], Any]) -> float:
            return min(timeit.repeat(fn, number=2000, repeat=7)) / 2000 * 1e6

        self.results["client_us"] = {
            "fleetcache get hit (whole call)": best(lambda: fc.get(*req)),
            "  request: normalise + digest": best(lambda: core.request(req)),
            "  building the script call": best(lambda: core.get_call(*core.request(req)))
            - best(lambda: core.request(req)),
            "  envelope decode (msgpack + pydantic)": best(lambda: core.codec.decode(env)),
            "incumbent get hit (whole call)": best(lambda: inc.get(*req)),
        }

    def redis_benchmark(self) -> None:
        exe = shutil.which("redis-benchmark")
        out: dict[str, Any] = {}
        if exe is None:
            self.results["redis_benchmark"] = {"missing": True}
            return
        for label, size in SIZES:
            for clients in (1, 16):
                cmd = [
                    exe, "-h", "127.0.0.1", "-p", str(self.server.port), "-t", "get,set",
                    "-d", str(size), "-n", str(self.mode["rb_requests"]), "-c", str(clients),
                    "--csv",
                ]  # fmt: skip
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
                for row in csv.DictReader(io.StringIO(proc.stdout)):
                    out[f"{row['test']} {label} c={clients}"] = float(row["rps"])
        self.results["redis_benchmark"] = out

    # server CPU per operation ---------------------------------------------------------------

    def server_cpu(self) -> None:
        from ractogateway.redis import RedisExactCache as Incumbent

        from fleetcache import RedisExactCache

        n = self.mode["cpu_ops"]
        c = self.r
        out: dict[str, Any] = {}
        count_sha = c.script_load(COUNT_ONLY_LUA)
        noop_sha = c.script_load("return 1")
        getonly_sha = c.script_load("return redis.call('GET', KEYS[1])")
        from fleetcache._codec import ACCEPT_PREFIX

        for label, size in SIZES:
            fc_resp, inc_resp = self.models(size)
            pfx = f"cpu:{size}"
            fc = RedisExactCache(client=c, key_prefix=f"{pfx}:fc")
            inc = Incumbent(client=c, key_prefix=f"{pfx}:inc")
            req = request()
            fc.put(*req, fc_resp)
            inc.put(*req, inc_resp)
            core = fc._core
            rq, dg, sh = core.request(req)
            ek, sk = core.keys.entry(sh, dg), core.keys.stats(sh)
            payload = c.get(ek)
            c.set(f"{pfx}:raw", payload)

            def multi() -> None:
                p = c.pipeline(transaction=True)
                p.get(ek)
                p.evalsha(count_sha, 2, ek, sk, rq[2], ACCEPT_PREFIX)
                p.execute()

            cases: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
                "plain GET": (lambda: c.get(f"{pfx}:raw"), ("get",)),
                "plain SET": (lambda: c.set(f"{pfx}:raw", payload), ("set",)),
                "fleetcache get hit (get-3.lua)": (lambda: fc.get(*req), ("evalsha",)),
                "fleetcache get hit (MULTI/GET/count/EXEC)": (
                    multi,
                    ("multi", "exec"),  # EXEC's time includes the queued commands
                ),
                "fleetcache put (put-3.lua)": (lambda: fc.put(*req, fc_resp), ("evalsha",)),
                "floor: no-op script (return 1)": (lambda: c.evalsha(noop_sha, 0), ("evalsha",)),
                "floor: script returning GET, no counting": (
                    lambda: c.evalsha(getonly_sha, 1, ek),
                    ("evalsha",),
                ),
                "floor: counting script only (GETRANGE header)": (
                    lambda: c.evalsha(count_sha, 2, ek, sk, rq[2], ACCEPT_PREFIX),
                    ("evalsha",),
                ),
                "incumbent get hit": (lambda: inc.get(*req), ("get",)),
                "incumbent put": (lambda: inc.put(*req, inc_resp), ("set",)),
            }
            res: dict[str, float] = {}
            for name, (fn, cmds) in cases.items():
                vals = []
                for _ in range(3):
                    c.config_resetstat()
                    for _ in range(n):
                        fn()
                    stats = c.info("commandstats")
                    total = sum(float(stats.get(f"cmdstat_{k}", {}).get("usec", 0)) for k in cmds)
                    vals.append(total / n)
                res[name] = median(vals)
            out[label] = res
        self.results["server_cpu_us"] = out

    # size / stats query time ------------------------------------------------------------------

    def size_curve(self) -> None:
        from ractogateway.redis import RedisExactCache as Incumbent

        from fleetcache import LLMResponse, RedisExactCache
        from fleetcache._codec import Codec

        points = self.mode["size_points"]
        reps = self.mode["size_reps"]
        cap = self.mode["incumbent_size_cap"]
        small = LLMResponse(content="ok", usage={"total_tokens": 3})
        env = Codec(LLMResponse).encode(small)
        out: dict[str, Any] = {"fleetcache len": {}, "fleetcache fleet_stats": {},
                               "incumbent len": {}, "incumbent stats": {}}  # fmt: skip
        # fleetcache in db 3, incumbent in db 4: each SCAN walks only its own cache's keys
        rf = redis.Redis.from_url(self.url.rsplit("/", 1)[0] + "/3", decode_responses=False)
        ri = redis.Redis.from_url(self.url.rsplit("/", 1)[0] + "/4", decode_responses=False)
        rf.flushdb()
        ri.flushdb()
        fc = RedisExactCache(client=rf, key_prefix="size:fc")
        inc = Incumbent(client=ri, key_prefix="size:inc")
        base = fc._core.keys.base(0)
        fill_f = rf.register_script(FILL_FLEET_LUA)
        fill_i = ri.register_script(FILL_INCUMBENT_LUA)
        have_f = have_i = 0
        for n in points:
            log(f"  size query at {n:,} entries ...")
            while have_f < n:
                step = min(20_000, n - have_f)
                fill_f(keys=[fc._core.keys.index(0)], args=[base, have_f, have_f + step, env])
                have_f += step
            assert len(fc) == n, (len(fc), n)
            out["fleetcache len"][n] = time_call(lambda: len(fc), max(reps, 5))
            out["fleetcache fleet_stats"][n] = time_call(fc.fleet_stats, max(reps, 5))
            if n <= cap:
                while have_i < n:
                    step = min(20_000, n - have_i)
                    fill_i(keys=[], args=["size:inc:", have_i, have_i + step, b"{}"])
                    have_i += step
                inc_reps = 1 if n >= 1_000_000 else reps
                out["incumbent len"][n] = time_call(lambda: len(inc), inc_reps)
                out["incumbent stats"][n] = time_call(lambda: inc.stats, inc_reps)
        rf.flushdb()
        ri.flushdb()
        rf.close()
        ri.close()
        self.results["size_ms"] = out

    # memory per entry -------------------------------------------------------------------------

    def memory(self) -> None:
        from ractogateway.redis import RedisExactCache as Incumbent

        from fleetcache import RedisExactCache

        n = self.mode["mem_entries"]
        out: dict[str, Any] = {}
        rm = redis.Redis.from_url(self.url.rsplit("/", 1)[0] + "/5", decode_responses=False)
        for label, size in SIZES:
            rm.flushdb()
            fc_resp, inc_resp = self.models(size)
            fc = RedisExactCache(client=rm, key_prefix="mem:fc")
            inc = Incumbent(client=rm, key_prefix="mem:inc")
            for i in range(n):
                fc.put(*request(i), fc_resp)
                inc.put(*request(i), inc_resp)
            k = fc._core.keys
            sample = [k.entry(*_shard_digest(fc, request(i))[::-1]) for i in range(0, n, 10)]
            inc_sample = [f"mem:inc:{_inc_digest(request(i))}" for i in range(0, n, 10)]
            entry = median([float(rm.memory_usage(x, samples=0) or 0) for x in sample])
            index = float(rm.memory_usage(k.index(0), samples=0) or 0) / n
            counters = float(rm.memory_usage(k.stats(0), samples=0) or 0) / n
            inc_entry = median([float(rm.memory_usage(x, samples=0) or 0) for x in inc_sample])
            out[label] = {
                "fleetcache entry": entry,
                "fleetcache index share": index,
                "fleetcache counters share": counters,
                "fleetcache total": entry + index + counters,
                "incumbent entry": inc_entry,
                "entries": n,
            }
        rm.flushdb()
        rm.close()
        self.results["bytes_per_entry"] = out

    # fleet ------------------------------------------------------------------------------------

    def fleet(self) -> None:
        fc_resp, _ = self.models(1024)
        from fleetcache import RedisExactCache

        fc = RedisExactCache(url=self.url, key_prefix="fleet:fc")
        for i in range(64):
            fc.put(*request(i), fc_resp)
        fc.close()
        ctx = mp.get_context("spawn")
        secs = self.mode["fleet_seconds"]
        out: dict[str, Any] = {}
        for procs in self.mode["fleet_procs"]:
            for kind in ("fleetcache get hit", "raw GET"):
                barrier = ctx.Barrier(procs)
                q = ctx.Queue()
                ps = [
                    ctx.Process(target=_fleet_worker, args=(self.url, kind, secs, barrier, q))
                    for _ in range(procs)
                ]
                for p in ps:
                    p.start()
                rates = [q.get(timeout=120) for _ in ps]
                for p in ps:
                    p.join(30)
                out.setdefault(kind, {})[procs] = sum(rates)
                log(f"  fleet {procs} procs {kind}: {sum(rates):,.0f} ops/s")
        self.results["fleet_ops"] = out


def _inc_digest(req: tuple[Any, ...]) -> str:
    from ractogateway.redis.exact_cache import _make_key

    return str(_make_key(*req))


def _shard_digest(fc: Any, req: tuple[Any, ...]) -> tuple[str, int]:
    _, d, s = fc._core.request(req)
    return d, s


def _fleet_worker(url: str, kind: str, secs: float, barrier: Any, q: Any) -> None:
    from fleetcache import RedisExactCache

    fc = RedisExactCache(url=url, key_prefix="fleet:fc")
    reqs = [request(i) for i in range(64)]
    assert fc.get(*reqs[0]) is not None
    r = fc.client
    raw_keys = [fc._core.keys.entry(*_shard_digest(fc, rq)[::-1]) for rq in reqs]
    barrier.wait(60)
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + secs
    if kind == "raw GET":
        while time.perf_counter() < deadline and n < 10_000_000:
            for k in raw_keys:
                r.get(k)
            n += len(raw_keys)
    else:
        while time.perf_counter() < deadline and n < 10_000_000:
            for rq in reqs:
                fc.get(*rq)
            n += len(reqs)
    q.put(n / (time.perf_counter() - t0))
    fc.close()


# -- report ---------------------------------------------------------------------------------


def _fmt_ops(x: float) -> str:
    return f"{x:,.0f}"


def targets(res: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    out: list[tuple[str, str, bool | None]] = []
    one = res.get("throughput", {}).get("1 KB", {})
    t = one.get("paired") or {k: v["median"] for k, v in one.get("ops", {}).items()}
    if t:
        hit = t["fleetcache get hit"]
        raw = t["raw GET"]
        inc = t["incumbent get hit (url=, as shipped)"]
        out.append(
            ("get hit >= 0.75x raw GET ops/s (1 KB)", f"{hit / raw:.2f}x", hit / raw >= 0.75)
        )
        out.append(
            ("get hit >= 5x incumbent as shipped (1 KB)", f"{hit / inc:.1f}x", hit / inc >= 5)
        )
    s = res.get("size_ms", {}).get("fleetcache len", {})
    big = max((int(k) for k in s), default=0)
    if big:
        ms = s[big] if big in s else s[str(big)]
        out.append((f"len() <= 2 ms at {big:,} entries", f"{ms:.3f} ms", ms <= 2.0))
    m = res.get("bytes_per_entry", {}).get("1 KB")
    if m:
        out.append(
            (
                "bytes/entry <= incumbent's (1 KB)",
                f"{m['fleetcache total']:.0f} vs {m['incumbent entry']:.0f} B",
                m["fleetcache total"] <= m["incumbent entry"],
            )
        )
    cpu = res.get("server_cpu_us", {}).get("16 KB")
    if cpu:
        ratio = cpu["fleetcache get hit (get-3.lua)"] / cpu["plain GET"]
        out.append(("server us per get <= 3x plain GET (16 KB)", f"{ratio:.2f}x", ratio <= 3))
    return out


def render(res: dict[str, Any]) -> str:
    meta = res.get("meta", {})
    lines = [
        "# fleetcache benchmark results",
        "",
        f"Produced by `{meta.get('command', 'make bench')}` (mode **{meta.get('mode')}**) on "
        f"{meta.get('when', '?')}: {meta.get('machine', '')}.",
        "One private `redis-server` "
        f"{meta.get('redis_version', '')} on a loopback port, started and stopped by the run; "
        "single-connection clients with `hiredis`. Throughput = median of "
        f"{meta.get('reps')} interleaved timed windows of {meta.get('window')} s each. "
        "The machine is a shared 2-core VM, so absolute numbers are noisy; ratios measured "
        "in the same run are the meaningful part.",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for name, val, ok in targets(res):
        lines.append(f"| {name} | {val} | {'yes' if ok else 'NO'} |")
    lines += ["", "## Single-client throughput (ops/s, median [min-max])", ""]
    thr = res.get("throughput", {})
    if thr:
        labels = list(thr)
        names = list(thr[labels[0]]["ops"])
        for lb in labels[1:]:
            names += [n for n in thr[lb]["ops"] if n not in names]
        lines.append("| operation | " + " | ".join(labels) + " | x raw GET (1 KB) |")
        lines.append("|---|" + "---|" * (len(labels) + 1))
        raw1 = thr[labels[0]]["ops"]["raw GET"]["median"]
        for n in names:
            cells = []
            for lb in labels:
                v = thr[lb]["ops"].get(n)
                cells.append(
                    f"{_fmt_ops(v['median'])} [{_fmt_ops(v['min'])}-{_fmt_ops(v['max'])}]"
                    if v
                    else "-"
                )
            v1 = thr[labels[0]]["ops"].get(n)
            lines.append(
                f"| {n} | " + " | ".join(cells) + f" | {v1['median'] / raw1:.2f} |"
                if v1
                else f"| {n} | " + " | ".join(cells) + " | - |"
            )
        if all("paired" in thr[lb] for lb in labels):
            lines += [
                "",
                "Get hits measured *paired* (alternating blocks of 10 calls, time summed per "
                "operation; the targets use these, as load from other processes on the "
                "machine hits every contestant alike):",
                "",
                "| get hit (paired) | " + " | ".join(labels) + " | x raw GET (1 KB) |",
                "|---|" + "---|" * (len(labels) + 1),
            ]
            p1 = thr[labels[0]]["paired"]
            for n in p1:
                cells = " | ".join(_fmt_ops(thr[lb]["paired"][n]) for lb in labels)
                lines.append(f"| {n} | {cells} | {p1[n] / p1['raw GET']:.2f} |")
        lines.append("")
        for lb in labels:
            b = thr[lb]["bytes"]
            lines.append(
                f"- {lb} response: fleetcache envelope {b['fleetcache envelope']:,} bytes "
                f"(msgpack, zlib above 4 KiB), incumbent JSON {b['incumbent JSON']:,} bytes."
            )
        lines.append(
            "- The incumbent as shipped (`url=`) builds a new connection pool, and so a new "
            "TCP connection, on every call."
        )
    rb = res.get("redis_benchmark", {})
    if rb and not rb.get("missing"):
        lines += ["", "## Server ceiling: `redis-benchmark` (same server, same value sizes)", ""]
        lines += ["| test | requests/s |", "|---|---|"]
        lines += [f"| {k} | {_fmt_ops(v)} |" for k, v in rb.items()]
    cpu = res.get("server_cpu_us", {})
    if cpu:
        lines += ["", "## Server CPU per operation (`INFO commandstats`, us per call)", ""]
        labels = list(cpu)
        lines.append("| operation | " + " | ".join(labels) + " | x plain GET (16 KB) |")
        lines.append("|---|" + "---|" * (len(labels) + 1))
        g16 = cpu[labels[-1]]["plain GET"]
        for n in cpu[labels[0]]:
            cells = " | ".join(f"{cpu[lb][n]:.2f}" for lb in labels)
            lines.append(f"| {n} | {cells} | {cpu[labels[-1]][n] / g16:.2f} |")
        lines.append(
            "\nFor a script, the figure is `cmdstat_evalsha` (the whole script, inner commands "
            "included); for MULTI it is multi+exec (EXEC's time includes the queued GET and "
            "EVALSHA, which commandstats also lists on their own)."
        )
    lines += _analysis(res)
    hitpath = _hit_path_summary(res)
    if hitpath:
        lines += ["", "## Serving a hit: payload through the script vs MULTI/GET/count/EXEC", ""]
        lines += hitpath
    size = res.get("size_ms", {})
    if size:
        lines += ["", "## Size / stats query time (ms, median)", ""]
        pts = sorted({int(k) for v in size.values() for k in v})
        lines.append("| query | " + " | ".join(f"{p:,}" for p in pts) + " |")
        lines.append("|---|" + "---|" * len(pts))
        for name, vals in size.items():
            norm = {int(k): v for k, v in vals.items()}
            cells = " | ".join(f"{norm[p]:.3f}" if p in norm else "-" for p in pts)
            lines.append(f"| {name} | {cells} |")
        lines.append(
            "\nThe incumbent's `len()`/`stats` SCAN its keys 100 at a time (its own database "
            "here, so the curve is the best case for it); fleetcache runs one ZCOUNT on the "
            "index. The incumbent's largest point is measured once (it is slow)."
        )
    mem = res.get("bytes_per_entry", {})
    if mem:
        lines += ["", "## Bytes per entry in Redis (`MEMORY USAGE ... SAMPLES 0`)", ""]
        labels = list(mem)
        lines.append("| | " + " | ".join(labels) + " |")
        lines.append("|---|" + "---|" * len(labels))
        for n in mem[labels[0]]:
            if n == "entries":
                continue
            lines.append(f"| {n} | " + " | ".join(f"{mem[lb][n]:,.1f}" for lb in labels) + " |")
        lines.append(
            f"\n{mem[labels[0]]['entries']:,} entries per cache; index and counters are shared "
            "by all entries of a shard, so their share is their size divided by the entries."
        )
    fleet = res.get("fleet_ops", {})
    if fleet:
        lines += ["", "## Fleet throughput (processes against one server, total ops/s)", ""]
        procs = sorted({int(p) for v in fleet.values() for p in v})
        lines.append("| | " + " | ".join(f"{p} proc" for p in procs) + " |")
        lines.append("|---|" + "---|" * len(procs))
        for name, vals in fleet.items():
            norm = {int(k): v for k, v in vals.items()}
            lines.append(
                f"| {name} (1 KB) | " + " | ".join(_fmt_ops(norm[p]) for p in procs) + " |"
            )
        lines.append(
            "\nOn this 2-core VM the server and all client processes share two cores: past 2 "
            "processes they only compete for CPU. fleetcache's clients spend more Python time "
            "per call (digest, envelope decode and pydantic validation, EVALSHA) and the "
            "server more time per call (the Lua script), so its total stays below raw GET's; "
            "on a real fleet the clients run on other machines."
        )
    lines += ["", "![benchmark chart](results.png)", ""]
    faults = res.get("faults")
    if faults:
        lines += _render_faults(faults)
    return "\n".join(lines) + "\n"


def _analysis(res: dict[str, Any]) -> list[str]:
    """Where the time of a get hit goes (from this run's own numbers)."""
    cpu = res.get("server_cpu_us", {})
    thr = res.get("throughput", {}).get("1 KB", {}).get("ops", {})
    if not cpu or not thr:
        return []
    c1, c16 = cpu.get("1 KB", {}), cpu.get("16 KB", {})
    out = ["", "## Why the get-hit targets are hard (this run's numbers)", ""]
    one = res.get("throughput", {}).get("1 KB", {})
    pt = one.get("paired") or {k: v["median"] for k, v in thr.items()}
    raw_us = 1e6 / pt["raw GET"]
    hit_us = 1e6 / pt["fleetcache get hit"]
    inc_us = 1e6 / pt["incumbent get hit (client=)"]
    out.append(
        f"- One client, 1 KB: raw GET {raw_us:.0f} us per call, incumbent with a reused "
        f"client {inc_us:.0f} us, fleetcache get hit {hit_us:.0f} us."
    )
    bare = pt.get("bare EVALSHA get-3 (no client work)")
    if bare:
        bare_us = 1e6 / bare
        out.append(
            f"- Of fleetcache's {hit_us - raw_us:.0f} us over a raw GET, "
            f"{bare_us - raw_us:.0f} us is the script (a bare EVALSHA of get-3.lua with "
            f"precomputed keys takes {bare_us:.0f} us) and {hit_us - bare_us:.0f} us is "
            "client work: request digest, envelope decode + pydantic validation, the "
            "sans-I/O driver and the error policy."
        )
    if "floor: no-op script (return 1)" in c1:
        out.append(
            f"- Server side, a script costs before doing anything: "
            f"{c1['floor: no-op script (return 1)']:.1f} us (plain GET "
            f"{c1['plain GET']:.1f} us). Pulling the value into Lua costs about "
            f"{c1['floor: script returning GET, no counting']:.1f} us at 1 KB and "
            f"{c16['floor: script returning GET, no counting']:.1f} us at 16 KB (it grows "
            "with the size: Redis copies the reply into a Lua string). Counting alone "
            "(header read + three HINCRBY) costs "
            f"{c1['floor: counting script only (GETRANGE header)']:.1f} us. So no "
            "design that counts hits atomically on the server can come near 3x a plain GET; "
            "the get-3.lua figure is the sum of the two parts."
        )
    cw = res.get("client_us")
    if cw:
        parts = ", ".join(f"{k.strip()} {v:.1f} us" for k, v in cw.items() if k.startswith(" "))
        whole = cw["fleetcache get hit (whole call)"]
        out.append(
            "- Client CPU per get hit with a stub client that answers at once (no network, "
            f"best of 7): fleetcache {whole:.1f} us ({parts}; the rest, "
            f"{whole - sum(v for k, v in cw.items() if k.startswith(' ')):.1f} us, is the "
            "sans-I/O driver, the facade and the error policy); the incumbent "
            f"{cw['incumbent get hit (whole call)']:.1f} us (sha256 + one "
            "`model_validate_json`; it counts nothing in Redis). Under load the same work "
            "takes several times longer, which is what the paired figures above show."
        )
    return out


def _hit_path_summary(res: dict[str, Any]) -> list[str]:
    thr = res.get("throughput", {})
    cpu = res.get("server_cpu_us", {})
    out = []
    a, b = "fleetcache get hit", "fleetcache get hit (MULTI/GET/count/EXEC)"
    for lb in thr:
        ops = thr[lb]["ops"]
        if a in ops and b in ops:
            ca = cpu.get(lb, {}).get("fleetcache get hit (get-3.lua)")
            cb = cpu.get(lb, {}).get(b)
            srv = f"; server {ca:.2f} vs {cb:.2f} us" if ca and cb else ""
            out.append(
                f"- {lb}: script {_fmt_ops(ops[a]['median'])} ops/s vs MULTI "
                f"{_fmt_ops(ops[b]['median'])} ops/s "
                f"({ops[a]['median'] / ops[b]['median']:.2f}x){srv}."
            )
    if out:
        out.append(
            "- The product serves hits through `get-3.lua` (one EVALSHA, one reply). The MULTI "
            "variant sends four commands and gets four replies per hit."
        )
    return out


def _render_faults(f: dict[str, Any]) -> list[str]:
    lines = [
        "## Fault-injection suite (`pytest -m faults`)",
        "",
        f"Latest run {f.get('when', '?')} (each scenario keeps its latest result; the soak "
        "duration is in its name). "
        "Every scenario runs against its own private `redis-server`.",
        "",
        "| scenario | invariant | operations | failures seen | data lost | result |",
        "|---|---|---|---|---|---|",
    ]
    total_ops = 0
    for s in f.get("scenarios", []):
        total_ops += int(s.get("operations", 0))
        lines.append(
            f"| {s['name']} | {s['invariant']} | {s.get('operations', 0):,} | "
            f"{s.get('failures', 0)} | {s.get('data_lost', 0)} | {s.get('result', '?')} |"
        )
    lines += [
        "",
        f"{len(f.get('scenarios', []))} scenarios, {total_ops:,} cache operations issued. "
        "'failures seen' counts exceptions that reached a caller or broken invariants; "
        "'data lost' counts acknowledged state (counters, index) that did not survive when it "
        "should have.",
        "",
        "Notes:",
        "",
        "- kill -9: the private server runs without persistence, so entries written before "
        "the kill are gone after the restart by design; nothing reached a caller and the same "
        "cache object served again.",
        "- noeviction at OOM: gets keep returning entries; the get script's counter writes "
        "(pcall) are refused while the server is out of memory, so those hits may go "
        "uncounted (`hits_counted_during_oom` in `bench/faults-summary.json`).",
        "- allkeys-lru: the scenario ages the first half of the entries past one tick of "
        "Redis's LRU clock (1 s) before overfilling. In a pure burst (every key younger "
        "than one tick) Redis may evict the index or the counters hash too: seen in 1 of 3 "
        "such runs, after which size and counters are wrong and `reconcile()` cannot repair "
        "them. Prefer `volatile-lru` (with entry TTLs) or `allkeys-lfu` for a shared cache.",
        "",
    ]
    return lines


def chart(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    fig.suptitle("fleetcache vs the limit (raw GET) and the incumbent — bench/RESULTS.md")
    thr = res.get("throughput", {})
    ax = axes[0][0]
    names = [
        ("raw GET", "raw GET"),
        ("fleetcache get hit", "fleetcache get"),
        ("fleetcache async get hit", "fleetcache async get"),
        ("incumbent get hit (client=)", "incumbent (client=)"),
        ("incumbent get hit (url=, as shipped)", "incumbent (url=)"),
    ]
    width = 0.38
    for j, lb in enumerate(thr):
        vals = [thr[lb]["ops"].get(n, {}).get("median", 0) for n, _ in names]
        xs = [i + (j - 0.5) * width for i in range(len(names))]
        bars = ax.bar(xs, vals, width, label=lb)
        ax.bar_label(bars, labels=[f"{v / 1000:.1f}k" for v in vals], fontsize=7)
    ax.set_xticks(range(len(names)), [s for _, s in names], rotation=15, fontsize=8)
    ax.set_ylabel("get hits / s (one client)")
    ax.set_title("Get hit throughput")
    ax.legend()

    ax = axes[0][1]
    size = res.get("size_ms", {})
    for name, vals in size.items():
        pts = sorted((int(k), v) for k, v in vals.items())
        if pts:
            ax.plot([p for p, _ in pts], [v for _, v in pts], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(2.0, color="grey", linestyle="--", linewidth=0.8)
    ax.text(1000, 2.3, "2 ms target", fontsize=7, color="grey")
    ax.set_xlabel("entries")
    ax.set_ylabel("ms per call")
    ax.set_title("Size / stats query time")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    mem = res.get("bytes_per_entry", {})
    labels = list(mem)
    xs = range(len(labels))
    e = [mem[lb]["fleetcache entry"] for lb in labels]
    idx = [
        mem[lb]["fleetcache index share"] + mem[lb]["fleetcache counters share"] for lb in labels
    ]
    inc = [mem[lb]["incumbent entry"] for lb in labels]
    ax.bar([x - 0.2 for x in xs], e, 0.4, label="fleetcache entry")
    ax.bar([x - 0.2 for x in xs], idx, 0.4, bottom=e, label="fleetcache index+counters share")
    b = ax.bar([x + 0.2 for x in xs], inc, 0.4, label="incumbent entry (JSON)")
    ax.bar_label(b, fmt="%.0f", fontsize=7)
    for x, a, c in zip(xs, e, idx, strict=True):
        ax.text(x - 0.2, a + c, f"{a + c:.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("bytes in Redis per entry")
    ax.set_title("Memory per entry")
    ax.legend(fontsize=8)

    ax = axes[1][1]
    fleet = res.get("fleet_ops", {})
    for name, vals in fleet.items():
        pts = sorted((int(k), v) for k, v in vals.items())
        ax.plot([p for p, _ in pts], [v for _, v in pts], marker="o", label=f"{name} (1 KB)")
    ax.set_xlabel("processes")
    ax.set_ylabel("total ops/s")
    ax.set_ylim(bottom=0)
    ax.set_title("Fleet throughput, one server (2-core VM)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def fold_faults(res: dict[str, Any]) -> None:
    p = HERE / "faults-summary.json"
    if p.exists():
        res["faults"] = json.loads(p.read_text())


def write_outputs(res: dict[str, Any]) -> None:
    fold_faults(res)
    (HERE / "results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    (HERE / "RESULTS.md").write_text(render(res))
    try:
        chart(res, HERE / "results.png")
    except ImportError:
        log("matplotlib missing (pip install '.[bench]'): no chart written")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_const", const="quick", dest="mode")
    g.add_argument("--full", action="store_const", const="full", dest="mode")
    ap.add_argument("--render", action="store_true", help="re-render from results.json")
    ap.add_argument("--only", default="", help="comma list: throughput,rb,cpu,size,memory,fleet")
    ns = ap.parse_args()
    if ns.render:
        res = json.loads((HERE / "results.json").read_text())
        write_outputs(res)
        log((HERE / "RESULTS.md").read_text())
        return 0
    mode_name = ns.mode or os.environ.get("BENCH_MODE", "quick")
    if mode_name not in MODES:
        ap.error(f"BENCH_MODE must be quick or full, not {mode_name!r}")
    mode = MODES[mode_name]
    binary = redis_server_bin()
    if binary is None:
        log("redis-server not found (apt-get install redis-server, or set REDIS_SERVER_BIN)")
        return 3
    only = {s for s in ns.only.split(",") if s}
    server = ServerProc(binary, extra=("--maxmemory", "0")).start()
    t0 = time.perf_counter()
    try:
        b = Bench(server, mode)
        info = b.r.info("server")
        b.results["meta"] = {
            "mode": mode_name,
            "command": f"make bench BENCH_MODE={mode_name}",
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, redis-py {redis.__version__}",
            "redis_version": info.get("redis_version"),
            "reps": mode["reps"],
            "window": mode["window"],
        }
        steps = [
            ("throughput", "single-client throughput", b.ops_throughput),
            ("client", "client CPU per get (stub client)", b.client_work),
            ("rb", "redis-benchmark", b.redis_benchmark),
            ("cpu", "server CPU per op", b.server_cpu),
            ("size", "size/stats query curve", b.size_curve),
            ("memory", "bytes per entry", b.memory),
            ("fleet", "fleet throughput", b.fleet),
        ]
        for key, title, fn in steps:
            if only and key not in only:
                continue
            t = time.perf_counter()
            log(f"[{time.perf_counter() - t0:6.1f}s] {title}")
            fn()
            log(f"         done in {time.perf_counter() - t:.1f}s")
        b.results["meta"]["seconds"] = round(time.perf_counter() - t0, 1)
        if only and (HERE / "results.json").exists():  # a partial run updates the last one
            old = json.loads((HERE / "results.json").read_text())
            old.update({k: v for k, v in b.results.items() if k != "meta"})
            b.results = old
        b.r.close()
    finally:
        server.stop()
    write_outputs(b.results)
    log((HERE / "RESULTS.md").read_text())
    for name, val, ok in targets(b.results):
        log(f"TARGET {'met   ' if ok else 'MISSED'} {name}: {val}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
