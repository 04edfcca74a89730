"""One soak process: mixed get/put/invalidate on shared keys with short TTLs (spawned by
test_soak.py; importable so that the ``spawn`` start method can find it)."""

from __future__ import annotations

import random
import time
from typing import Any

from fleetcache import LLMResponse, RedisExactCache

KEYS = 40


def req(i: int) -> tuple[str, str, str, float, int]:
    return (f"shared prompt {i}", "sys", f"model-{i % 3}", 0.2, 128)


def run(url: str, prefix: str, seed: int, seconds: float, barrier: Any, out: Any) -> None:
    """Counts what this process issued and observed; sends a dict on ``out``."""
    rng = random.Random(seed)
    cache = RedisExactCache(url=url, key_prefix=prefix, on_error="raise")
    counts = {"gets": 0, "hits": 0, "misses": 0, "puts": 0, "invalidations": 0, "errors": 0}
    wrong = 0
    try:
        barrier.wait(60)
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline and n < 5_000_000:
            n += 1
            i = rng.randrange(KEYS)
            roll = rng.random()
            try:
                if roll < 0.6:
                    counts["gets"] += 1
                    got = cache.get(*req(i))
                    if got is None:
                        counts["misses"] += 1
                    else:
                        counts["hits"] += 1
                        wrong += int(got.content != f"answer {i}")
                elif roll < 0.9:
                    ttl = rng.choice((0.05, 0.1, 0.25, 0.5, 1.0))
                    resp = LLMResponse(content=f"answer {i}", usage={"total_tokens": 7})
                    cache.put(*req(i), resp, ttl_seconds=ttl)
                    counts["puts"] += 1
                else:
                    cache.invalidate(*req(i))
                    counts["invalidations"] += 1
            except Exception:
                counts["errors"] += 1
        counts["wrong"] = wrong
    finally:
        cache.close()
        out.put(counts)
