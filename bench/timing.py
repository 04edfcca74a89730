"""Timing helpers shared by every measurement: windows, interleaving and pairing."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def log(msg: str) -> None:
    print(msg, flush=True)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def timed_rate(fn: Callable[[], Any], seconds: float, max_ops: int = 2_000_000) -> float:
    """Ops/s of ``fn`` over a window of ``seconds`` (bounded by ``max_ops`` calls)."""
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
    of them alike, so their ratios are steadier than those of separate windows. ``seconds``
    is the budget per operation."""
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
    """Median wall time of one call of ``fn``, in ms."""
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return median(out)


def commandstats_us(
    client: Any, fn: Callable[[], Any], commands: tuple[str, ...], n: int, reps: int = 3
) -> float:
    """Server CPU per call of ``fn`` in us: ``INFO commandstats`` usec of ``commands`` summed,
    over ``n`` calls after a ``CONFIG RESETSTAT``; median of ``reps`` runs."""
    vals = []
    for _ in range(reps):
        client.config_resetstat()
        for _ in range(n):
            fn()
        stats = client.info("commandstats")
        total = sum(float(stats.get(f"cmdstat_{k}", {}).get("usec", 0)) for k in commands)
        vals.append(total / n)
    return median(vals)


def server_cpu_s(c: Any) -> float:
    """The server process's CPU seconds so far (user + sys, from ``INFO cpu``)."""
    cpu = c.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
