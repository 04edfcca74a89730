"""The demo's worker processes: each sends Zipf-distributed prompts through one shared
``RedisExactCache`` (``get_or_compute``) to the simulated LLM, and counts what it did in its
own slots of an array shared with the parent."""

from __future__ import annotations

import random
import signal
import time
from dataclasses import dataclass
from typing import Any

from ..cache import RedisExactCache
from .llm import PRICES, SYSTEM_PROMPT, prompt_model, prompt_text, simulated_llm, zipf_cum_weights

#: Counters each worker keeps in shared memory (its own ``SLOTS`` slots only).
REQ, LLM, LLM_TOKENS, ERRORS, WAIT_US = range(5)
SLOTS = 5


@dataclass(frozen=True)
class WorkerConfig:
    """What one worker process needs (picklable: workers are spawned)."""

    url: str
    prefix: str
    shards: int
    prompts: int
    zipf: float
    latency: float
    rate: float
    ttl: float | None
    seed: int
    max_requests: int


def sum_slots(counters: Any, workers: int, slot: int) -> int:
    """One counter added up over every worker's slots."""
    return sum(int(counters[i * SLOTS + slot]) for i in range(workers))


def worker(
    idx: int, cfg: WorkerConfig, counters: Any, stop: Any, ready: Any
) -> None:  # pragma: no cover - runs in a child process (the demo tests cover it end to end)
    """Worker ``idx``'s loop: until ``stop`` is set (or ``cfg.max_requests``), pick a
    prompt, ask the cache (computing with the simulated LLM on a miss, which the cache times and
    prices with ``PRICES``), think, repeat."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    rng = random.Random(cfg.seed * 1000 + idx)
    cum = zipf_cum_weights(cfg.prompts, cfg.zipf)
    ranks = range(cfg.prompts)
    base = idx * SLOTS
    cache = RedisExactCache(
        url=cfg.url, key_prefix=cfg.prefix, shards=cfg.shards, ttl_seconds=cfg.ttl, prices=PRICES
    )
    ready.set()
    try:
        for _ in range(cfg.max_requests):  # bounded; normally the stop event ends the loop
            if stop.is_set():
                break
            k = rng.choices(ranks, cum_weights=cum)[0]
            model = prompt_model(k)

            def compute(k: int = k, model: str = model) -> Any:
                resp = simulated_llm(k, model, cfg.latency, rng)
                counters[base + LLM] += 1
                counters[base + LLM_TOKENS] += resp.usage["total_tokens"]
                return resp

            t0 = time.perf_counter()
            try:
                cache.get_or_compute(prompt_text(k), SYSTEM_PROMPT, model, 0.0, 512, compute)
            except Exception:
                counters[base + ERRORS] += 1
            counters[base + WAIT_US] += int((time.perf_counter() - t0) * 1e6)
            counters[base + REQ] += 1
            if cfg.rate > 0:
                stop.wait(rng.expovariate(cfg.rate))  # think time between a user's requests
    finally:
        cache.close()
