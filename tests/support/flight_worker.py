"""One process of the single-flight fleet tests (run as ``python -m tests.flight_worker``).

Arguments: ``URL PREFIX MODE LEASE_SECONDS``. The worker counts itself in
``<PREFIX>:ready``, waits (polling, bounded) until the key ``<PREFIX>:go`` exists, so every
worker asks at the same moment, then calls ``get_or_compute`` once and prints one JSON
line: ``{"pid", "content"}`` or ``{"pid", "error"}``. ``compute`` counts its calls
fleet-wide with ``INCR <PREFIX>:computes`` (never in process memory). Modes:

- ``slow``: compute takes 0.5 s.
- ``die``: the first compute of the fleet records its PID in ``<PREFIX>:holder`` and then
  blocks (the test SIGKILLs it); later computes take 0.1 s.
- ``raise``: the first compute of the fleet raises ``RuntimeError`` after 0.2 s; later
  computes take 0.2 s.
"""

from __future__ import annotations

import json
import os
import sys
import time

import redis

from fleetcache import LLMResponse, RedisExactCache


def main() -> int:
    url, prefix, mode, lease = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    raw = redis.Redis.from_url(url, socket_timeout=5)
    cache = RedisExactCache(url=url, key_prefix=prefix, socket_timeout=5)
    pid = os.getpid()

    def compute() -> LLMResponse:
        n = int(raw.incr(f"{prefix}:computes"))
        if mode == "die" and n == 1:
            raw.set(f"{prefix}:holder", pid)
            time.sleep(60)  # killed by the test long before this ends
        if mode == "raise" and n == 1:
            time.sleep(0.2)
            raise RuntimeError(f"compute failed in {pid}")
        time.sleep(0.5 if mode == "slow" else 0.2 if mode == "raise" else 0.1)
        return LLMResponse(content=f"computed by {pid}", usage={"total_tokens": 40})

    raw.incr(f"{prefix}:ready")
    deadline = time.monotonic() + 30
    while not raw.exists(f"{prefix}:go"):
        if time.monotonic() > deadline:
            print(json.dumps({"pid": pid, "error": "no go signal"}), flush=True)
            return 2
        time.sleep(0.002)
    try:
        got = cache.get_or_compute(
            "the same question", "sys", "gpt-test", 0.0, 64, compute, lease_seconds=lease
        )
    except RuntimeError as exc:
        print(json.dumps({"pid": pid, "error": str(exc)}), flush=True)
        return 0
    print(json.dumps({"pid": pid, "content": got.content}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
