"""Client CPU per get hit (thread CPU time, syscalls included), 1 KB response, on a private
server: ``python -m bench.client_cpu [ROUNDS]``. Run it with another checkout's ``src`` on
``PYTHONPATH`` to compare two versions (median and min of the rounds, 2,000 hits each)."""

from __future__ import annotations

import statistics
import sys
import time

from fleetcache import LLMResponse, RedisExactCache
from fleetcache.embedded import EmbeddedServer

HITS = 2000


def main(rounds: int = 7) -> tuple[float, float]:
    """``(median, min)`` client CPU µs per hit over ``rounds`` rounds."""
    srv = EmbeddedServer()
    srv.start()
    try:
        cache = RedisExactCache(url=srv.url, key_prefix="bench:cpu")
        usage = {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
        fields = ("question", "sys", "gpt-4o-mini", 0.0, 256)
        cache.put(*fields, LLMResponse(content="x" * 1000, usage=usage))
        for _ in range(500):
            cache.get(*fields)
        per_hit = []
        for _ in range(rounds):
            started = time.thread_time()
            for _ in range(HITS):
                cache.get(*fields)
            per_hit.append((time.thread_time() - started) / HITS * 1e6)
        return statistics.median(per_hit), min(per_hit)
    finally:
        srv.stop()


if __name__ == "__main__":
    med, low = main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
    print(f"client CPU per get hit: median {med:.2f} us, min {low:.2f} us")
