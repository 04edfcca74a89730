"""One writer of the bounded-namespace fleet test (``python -m tests.support.cap_worker``).

Arguments: ``URL PREFIX SHARDS MAX_ENTRIES WORKER N``. Waits (bounded) for the key
``<PREFIX>:go`` so every worker starts together, then writes the requests
``("w<WORKER>-<i>", ...)`` for ``i < N``: mostly ``put``, every 7th through ``put_many`` (5
items), every 11th through ``get_or_compute`` (a miss: the put_release script). Prints one
JSON line: ``{"puts": <puts issued>, "errors": <exceptions>}``. ``on_error="raise"``: any
Redis fault is an error the test sees.
"""

from __future__ import annotations

import json
import sys
import time

import redis

from fleetcache import LLMResponse, RedisExactCache


def fields(worker: int, i: int) -> tuple[str, str, str, float, int]:
    return (f"w{worker}-{i}", "cap", "m", 0.0, 8)


def main() -> int:
    url, prefix = sys.argv[1], sys.argv[2]
    shards, cap, worker, n = (int(a) for a in sys.argv[3:7])
    raw = redis.Redis.from_url(url, socket_timeout=5)
    deadline = time.monotonic() + 30
    while not raw.exists(f"{prefix}:go") and time.monotonic() < deadline:
        time.sleep(0.005)
    cache = RedisExactCache(
        url=url, key_prefix=prefix, shards=shards, max_entries=cap, on_error="raise",
        socket_timeout=5,
    )  # fmt: skip
    puts = errors = 0
    i = 0
    while i < n:
        try:
            if i % 7 == 0 and i + 5 <= n:
                cache.put_many(
                    [(*fields(worker, i + k), LLMResponse(content="x")) for k in range(5)]
                )
                puts += 5
                i += 5
                continue
            if i % 11 == 0:
                cache.get_or_compute(*fields(worker, i), lambda: LLMResponse(content="y"))
            else:
                cache.put(*fields(worker, i), LLMResponse(content="z"))
            puts += 1
        except Exception:  # counted and reported: the test asserts there are none
            errors += 1
        i += 1
    cache.close()
    print(json.dumps({"puts": puts, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
