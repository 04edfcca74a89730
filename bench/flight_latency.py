"""How much latency single-flight waiting adds: the time from the moment the lease holder's
answer is stored to the moment each waiter returns it.

Starts its own redis-server on a free loopback port (stopped by PID at the end). Each round:
one holder computes for a random 0.1-0.6 s (so the answer lands at a random point of the
waiters' backoff), W waiters ask meanwhile; added latency = waiter return - holder return
(the holder returns right after its store-and-release script). Sync: threads; async: tasks.

    python -m bench.flight_latency [--rounds 20] [--waiters 8] [--tasks 50]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import threading
import time
import uuid

from fleetcache import AsyncRedisExactCache, LLMResponse, RedisExactCache
from fleetcache.embedded import EmbeddedServer, redis_server_bin

Req = tuple[str, str, str, float, int]


def _summary(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    return (
        f"{name:<6} n={len(ms):<5} median={statistics.median(ms):6.1f} ms  "
        f"p90={p90:6.1f} ms  max={ms[-1]:6.1f} ms"
    )


def sync_rounds(url: str, rounds: int, waiters: int) -> list[float]:
    added: list[float] = []
    caches = [
        RedisExactCache(url=url, key_prefix="bench-flight", socket_timeout=5) for _ in range(4)
    ]
    for r in range(rounds):
        req: Req = (f"q{r}-{uuid.uuid4().hex}", "s", "m", 0.0, 8)
        took = random.uniform(0.1, 0.6)
        leased = threading.Event()
        done: dict[str, float] = {}

        def compute(took: float = took, leased: threading.Event = leased) -> LLMResponse:
            leased.set()
            time.sleep(took)
            return LLMResponse(content="x")

        def holder(req: Req = req, done: dict[str, float] = done) -> None:
            caches[0].get_or_compute(*req, compute)
            done["holder"] = time.perf_counter()

        def waiter(i: int, req: Req = req, done: dict[str, float] = done) -> None:
            caches[i % 4].get_or_compute(*req, compute)
            done[f"w{i}"] = time.perf_counter()

        h = threading.Thread(target=holder)
        h.start()
        leased.wait(10)
        ws = [threading.Thread(target=waiter, args=(i,)) for i in range(waiters)]
        for t in ws:
            t.start()
        for t in [h, *ws]:
            t.join(30)
        added += [(done[f"w{i}"] - done["holder"]) * 1000 for i in range(waiters)]
    for c in caches:
        c.close()
    return added


async def async_rounds(url: str, rounds: int, tasks: int) -> list[float]:
    added: list[float] = []
    caches = [
        AsyncRedisExactCache(url=url, key_prefix="bench-flight", socket_timeout=5) for _ in range(4)
    ]
    for r in range(rounds):
        req: Req = (f"aq{r}-{uuid.uuid4().hex}", "s", "m", 0.0, 8)
        took = random.uniform(0.1, 0.6)
        leased = asyncio.Event()

        async def compute(took: float = took, leased: asyncio.Event = leased) -> LLMResponse:
            leased.set()
            await asyncio.sleep(took)
            return LLMResponse(content="x")

        async def timed(i: int, req: Req = req) -> float:
            await caches[i % 4].get_or_compute(*req, compute)
            return time.perf_counter()

        holder = asyncio.ensure_future(timed(0))
        await asyncio.wait_for(leased.wait(), 10)
        ends = await asyncio.gather(*(timed(i) for i in range(1, tasks + 1)))
        t_holder = await holder
        added += [(t - t_holder) * 1000 for t in ends]
    for c in caches:
        await c.aclose()
    return added


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--waiters", type=int, default=8)
    ap.add_argument("--tasks", type=int, default=50)
    a = ap.parse_args()
    binary = redis_server_bin()
    if binary is None:
        print("redis-server not found", file=sys.stderr)
        return 3
    server = EmbeddedServer(binary).start()
    try:
        print(f"waiter added latency (answer stored -> waiter returns), {a.rounds} rounds")
        print(_summary("sync", sync_rounds(server.url, a.rounds, a.waiters)))
        print(_summary("async", asyncio.run(async_rounds(server.url, a.rounds, a.tasks))))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
