"""The single-server measurements: throughput of every contestant (interleaved windows and
paired blocks), client CPU with a stub client, redis-benchmark, server CPU per operation
(``INFO commandstats``), the size/stats query curve and bytes per entry."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import shutil
import subprocess
import time
import timeit
from collections.abc import Callable
from functools import partial
from typing import Any

import redis

from bench import peers
from bench.payloads import request, response_fields
from bench.scripts import (
    COUNT_ONLY_LUA,
    FILL_FLEET_LUA,
    FILL_INCUMBENT_LUA,
    GET_AND_COUNT_LUA,
    GET_ONLY_LUA,
    NOOP_LUA,
)
from bench.timing import (
    commandstats_us,
    interleaved,
    log,
    median,
    paired,
    server_cpu_s,
    time_call,
    timed_rate,
)
from fleetcache.embedded import EmbeddedServer

# reps: interleaved windows per contestant; window: seconds each; size_points: entries of the
# len()/stats curve (incumbent_size_cap: its largest point); size_reps: timed calls per point;
# pair_seconds: paired-block budget per operation (s); mem_entries: entries per cache for
# MEMORY USAGE; cpu_ops: calls per commandstats figure; fleet_procs / fleet_seconds: client
# processes and seconds per fleet run; rb_requests: redis-benchmark -n; batches: get_many sizes.
MODES: dict[str, dict[str, Any]] = {
    "quick": {
        "reps": 5,
        "window": 0.2,
        "size_points": (1_000, 10_000, 100_000, 1_000_000),
        "incumbent_size_cap": 100_000,
        "size_reps": 3,
        "pair_seconds": 0.6,
        "mem_entries": 1_000,
        "cpu_ops": 2_000,
        "fleet_procs": (1, 2, 4),
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
        "pair_seconds": 3.0,
        "mem_entries": 5_000,
        "cpu_ops": 10_000,
        "fleet_procs": (1, 2, 4, 8),
        "fleet_seconds": 4.0,
        "rb_requests": 100_000,
        "batches": (1, 10, 100),
    },
}
SIZES = (("1 KB", 1024), ("16 KB", 16384))


class Bench:
    """The single-server measurements of one run; each method fills ``self.results``."""

    def __init__(self, server: EmbeddedServer, mode: dict[str, Any]) -> None:
        self.server = server
        self.mode = mode
        self.url = server.url
        # Any: redis-py types every sync command as returning "Awaitable[Any] | Any"
        self.r: Any = redis.Redis.from_url(self.url, decode_responses=False)
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
            from fleetcache.core.envelope import ACCEPT_PREFIX

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
            others = self.peers(size, pfx)
            for p in others:
                contestants[f"{p.name} get hit"] = partial(timed_rate, p.get, win)
                contestants[f"{p.name} put"] = partial(timed_rate, p.put, win, 20_000)
            res = interleaved(contestants, reps)
            # Two paired groups: the fast hit paths among themselves, and the slow ones (the
            # incumbent as shipped, the peers) with fleetcache, raw GET and the incumbent as
            # anchors; the slow ones' garbage and long blocks would otherwise land in the
            # fast ones' timings. Ratios are taken within one group.
            anchors: dict[str, Callable[[], Any]] = {
                "raw GET": lambda: c.get(raw_key),
                "fleetcache get hit": lambda: fc_get(*req),
                "incumbent get hit (client=)": lambda: inc_cli.get(*req),
            }
            fast: dict[str, Callable[[], Any]] = {
                **anchors,
                "bare EVALSHA get-3 (no client work)": lambda: c.evalsha(*get_args),
                "fleetcache get hit (MULTI/GET/count/EXEC)": multi_get,
            }
            if size > 4096:  # the default compresses bodies from 4 KiB: what that costs a hit
                fcz = RedisExactCache(
                    url=self.url, key_prefix=f"{pfx}:fcz", compress_threshold=None
                )
                fcz.put(*req, fc_resp)
                assert fcz.get(*req) == fc_resp
                fast["fleetcache get hit (compress_threshold=None)"] = lambda: fcz.get(*req)
            slow: dict[str, Callable[[], Any]] = {
                **anchors,
                "incumbent get hit (url=, as shipped)": lambda: inc_url.get(*req),
            }
            # LiteLLM's completion path leaves background work (logging threads, garbage)
            # that would land in whatever runs next: the two completion rows get a group
            # of their own, so each is compared with the other under the same load
            slow.update({f"{p.name} get hit": p.get for p in others if "completion" not in p.name})
            whole = {f"{p.name} get hit": p.get for p in others if "completion" in p.name}
            budget = self.mode["pair_seconds"]
            pair = paired(fast, budget)
            pair_slow = paired(slow, budget, block=5)
            pair_whole = paired(whole, budget, block=2) if whole else {}
            peers.litellm_off()
            out[label] = {
                "ops": res,
                "paired": pair,
                "paired_peers": pair_slow,
                "paired_completion": pair_whole,
                "peers": {p.name: {"counts": p.counts, "how_many": p.how_many} for p in others},
                "bytes": {
                    "fleetcache envelope": len(payload),
                    "incumbent JSON": len(inc_bytes),
                },
            }
            fc.close()
            loop.run_until_complete(afc.aclose())
        loop.close()
        self.results["throughput"] = out

    def peers(self, size: int, pfx: str) -> list[peers.Peer]:
        """LiteLLM's and LangChain's caches (and fleetcache's LangChain adapter) on this
        server at this response size; none if their packages are missing."""
        out: list[peers.Peer] = []
        try:
            out += peers.litellm_peers(self.server.port, self.r, size, url=self.url, prefix=pfx)
        except ImportError as exc:
            log(f"  litellm missing ({exc}): pip install '.[bench]'")
        try:
            out += peers.langchain_peers(self.r, self.url, size, pfx)
        except ImportError as exc:
            log(f"  langchain-community missing ({exc}): pip install '.[bench]'")
        return out

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
            out[f"fleetcache get_many x{b} (entries/s)"] = partial(
                lambda batch, b: timed_rate(lambda: fc.get_many(batch), win) * b, batch, b
            )
        return out

    # server ceiling --------------------------------------------------------------------------

    def client_work(self) -> None:
        """Client CPU per get hit. Without any network: the caches driven with stub clients
        that answer at once (``bench.profile_hit``), in this thread's CPU time (best of 7
        runs of 2,000 calls, us per call; the wall-clock figure of the whole call beside
        it). Against the server: each contestant's client CPU time per real hit at 1 KB
        (the redis-py driver and socket calls included, the wait for the reply not)."""
        from ractogateway.redis import RedisExactCache as Incumbent

        from bench.profile_hit import StubClient, best_us, stub_cache

        fc, req, env = stub_cache(1024)
        core = fc._core
        _, inc_resp = self.models(1024)
        inc = Incumbent(client=StubClient(inc_resp.model_dump_json().encode()), key_prefix="cw")
        norm, dg, _ = core.request(req)
        whole = best_us(lambda: fc.get(*req))
        self.results["client_us"] = {
            "fleetcache get hit (whole call)": whole,
            "  request: normalise + digest": best_us(lambda: core.request(req)),
            "  building the script call": best_us(lambda: core.get_call(norm, dg, 0)),
            "  envelope decode (msgpack + pydantic)": best_us(lambda: core.codec.decode(env)),
            "incumbent get hit (whole call)": best_us(lambda: inc.get(*req)),
            "fleetcache get hit (whole call, wall clock)": min(
                timeit.repeat(lambda: fc.get(*req), number=2000, repeat=7)
            )
            / 2000
            * 1e6,
        }
        self.results["client_cpu_real_us"] = self.client_cpu_real()

    def client_cpu_real(self) -> dict[str, dict[str, float]]:
        """CPU time per 1 KB get hit against this run's server, per contestant: the client
        thread's (``time.thread_time``) and the server process's (``INFO cpu``), us per call,
        the least total of 7 round-robin runs of 300 calls. Unlike wall-clock throughput this
        does not depend on how busy the machine is: on a dedicated one, a hit costs about
        client + server CPU plus the network's latency."""
        from ractogateway.redis import RedisExactCache as Incumbent

        from fleetcache import RedisExactCache

        fc_resp, inc_resp = self.models(1024)
        fc = RedisExactCache(url=self.url, key_prefix="cpu-real:fc")
        inc = Incumbent(client=self.r, key_prefix="cpu-real:inc")
        req = request()
        fc.put(*req, fc_resp)
        inc.put(*req, inc_resp)
        assert fc.get(*req) == fc_resp
        core = fc._core
        g = core.get_call(*core.request(req))
        args = (g.script.sha, len(g.keys), *g.keys, *g.args)
        cl = fc.client
        cl.set("cpu-real:raw", cl.get(g.keys[0]))
        fns: dict[str, Callable[[], Any]] = {
            "raw GET": lambda: cl.get("cpu-real:raw"),
            "bare EVALSHA get-3": lambda: cl.evalsha(*args),
            "fleetcache get hit": lambda: fc.get(*req),
            "incumbent get hit (client=)": lambda: inc.get(*req),
        }
        for p in self.peers(1024, "cpu-real"):
            fns[f"{p.name} get hit"] = p.get
        # round-robin over the contestants, 7 rounds of 300 calls each, the least total
        # kept per contestant: a burst of load from elsewhere hits one round, not one row
        best: dict[str, tuple[float, float, float]] = {}
        for _ in range(7):
            for k, f in fns.items():
                s0 = server_cpu_s(self.r)
                t0 = time.thread_time()
                for _ in range(300):
                    f()
                client = (time.thread_time() - t0) / 300 * 1e6
                server = (server_cpu_s(self.r) - s0) / 300 * 1e6  # incl. 2 INFO calls: ~0.1
                if k not in best or client + server < best[k][0]:
                    best[k] = (client + server, client, server)
        out = {k: {"client": c, "server": sv, "total": t} for k, (t, c, sv) in best.items()}
        peers.litellm_off()
        fc.close()
        return out

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
        noop_sha = c.script_load(NOOP_LUA)
        getonly_sha = c.script_load(GET_ONLY_LUA)
        gc_sha = c.script_load(GET_AND_COUNT_LUA)
        from fleetcache.core.envelope import ACCEPT_PREFIX

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
                "floor: minimal get-and-count script (GET + 2 HINCRBY)": (
                    lambda: c.evalsha(gc_sha, 2, ek, sk, rq[2]),
                    ("evalsha",),
                ),
                "floor: counting script only (GETRANGE header)": (
                    lambda: c.evalsha(count_sha, 2, ek, sk, rq[2], ACCEPT_PREFIX),
                    ("evalsha",),
                ),
                "incumbent get hit": (lambda: inc.get(*req), ("get",)),
                "incumbent put": (lambda: inc.put(*req, inc_resp), ("set",)),
            }
            res = {name: commandstats_us(c, fn, cmds, n) for name, (fn, cmds) in cases.items()}
            out[label] = res
        self.results["server_cpu_us"] = out

    # size / stats query time ------------------------------------------------------------------

    def size_curve(self) -> None:
        from ractogateway.redis import RedisExactCache as Incumbent

        from fleetcache import LLMResponse, RedisExactCache
        from fleetcache.core.envelope import Codec

        points = self.mode["size_points"]
        reps = self.mode["size_reps"]
        cap = self.mode["incumbent_size_cap"]
        small = LLMResponse(content="ok", usage={"total_tokens": 3})
        env = Codec(LLMResponse).encode(small)
        out: dict[str, Any] = {"fleetcache len": {}, "fleetcache fleet_stats": {},
                               "incumbent len": {}, "incumbent stats": {}}  # fmt: skip
        # fleetcache in db 3, incumbent in db 4: each SCAN walks only its own cache's keys
        rf: Any = redis.Redis.from_url(self.url.rsplit("/", 1)[0] + "/3", decode_responses=False)
        ri: Any = redis.Redis.from_url(self.url.rsplit("/", 1)[0] + "/4", decode_responses=False)
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
        rm: Any = redis.Redis.from_url(self.url.rsplit("/", 1)[0] + "/5", decode_responses=False)
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
            out[label].update(self.peer_memory(rm, size, n))
        rm.flushdb()
        rm.close()
        self.results["bytes_per_entry"] = out

    def peer_memory(self, rm: Any, size: int, n: int) -> dict[str, float]:
        """Bytes per entry of each peer (``MEMORY USAGE`` of what it writes, median of every
        10th of ``n`` entries, plus its shared keys' size divided by ``n``), in ``rm``'s db."""
        db = int(rm.connection_pool.connection_kwargs.get("db", 0))
        base = self.url.rsplit("/", 1)[0]
        out: dict[str, float] = {}
        found: list[peers.Peer] = []
        with contextlib.suppress(ImportError):
            found += [  # the completion rows write the same entries as their backends
                p
                for p in peers.litellm_peers(
                    self.server.port, rm, size, db=db, url=f"{base}/{db}", prefix="mem"
                )
                if "completion" not in p.name
            ]
        with contextlib.suppress(ImportError):
            found += peers.langchain_peers(rm, f"{base}/{db}", size, "mem")
        for p in found:
            for i in range(n):
                p.write(i)
            sample = p.sample_keys(n) if p.sample_keys else [p.key_of(i) for i in range(0, n, 10)]
            per = median([float(rm.memory_usage(k, samples=0) or 0) for k in sample])
            shared = sum(float(rm.memory_usage(k, samples=0) or 0) for k in p.shared_keys())
            out[f"{p.name} entry"] = per
            out[f"{p.name} total"] = per + shared / n
        peers.litellm_off()
        return out


def _inc_digest(req: tuple[Any, ...]) -> str:
    from ractogateway.redis.exact_cache import _make_key

    return str(_make_key(*req))


def _shard_digest(fc: Any, req: tuple[Any, ...]) -> tuple[str, int]:
    _, d, s = fc._core.request(req)
    return d, s
