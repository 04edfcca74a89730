"""What the OpenAI SDK wrapper adds to a cache hit, standalone (not part of ``make bench``):

- ``get_request`` hit of the keyed request (the floor: script, decode);
- ``chat.completions.create`` hit through ``fleetcache.integrations.openai.cached``
  (the same read through ``get_or_compute_request``, plus building the SDK's
  ``ChatCompletion``);
- a streamed hit: ``create(stream=True)`` replayed and iterated to the end (the SDK's
  ``ChatCompletionChunk`` objects, built the way the SDK builds them from the wire).

    python -m bench.sdk_wrappers [--calls 3000]

Microseconds per call, best of 3 runs of ``--calls`` calls each, one client, a small
completion (one sentence and one tool call). Needs the ``openai`` extra; starts its own
``redis-server`` on a free loopback port. The SDK talks to a fake transport
(``httpx2.MockTransport`` answering one fixed completion), called once to fill the entry.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from fleetcache import RedisExactCache
from fleetcache.embedded import EmbeddedServer, redis_server_bin
from fleetcache.integrations.openai import CODEC, cached

# What the fake API answers: a chat completion with one sentence, one tool call and usage.
COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "logprobs": None,
            "message": {
                "role": "assistant",
                "content": "The capital of France is Paris.",
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_b1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23},
}


class FakeOpenAI:
    """An ``openai.OpenAI`` client on a mock transport; ``calls`` counts what reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def _handle(self, request: Any) -> Any:
        import httpx2

        self.calls += 1
        return httpx2.Response(200, json=COMPLETION)

    def client(self) -> Any:
        import httpx2
        import openai

        http = httpx2.Client(transport=httpx2.MockTransport(self._handle))
        return openai.OpenAI(api_key="sk-fake", http_client=http, max_retries=0)


def per_call_us(fn: Callable[[], Any], calls: int) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    binary = redis_server_bin()
    if binary is None:
        sys.exit("redis-server not found")
    server = EmbeddedServer(binary).start()
    try:
        with RedisExactCache(url=server.url, key_prefix="bench:sdk") as cache:
            cache.clear()
            upstream = FakeOpenAI()
            client = cached(upstream.client(), cache)
            question = [{"role": "user", "content": "What is the capital of France?"}]
            kw: dict[str, Any] = {"model": "gpt-4o-mini", "messages": question}
            client.chat.completions.create(**kw)
            keyed = {**kw, "fleetcache_endpoint": CODEC.endpoint}
            rows = [
                ("get_request hit", per_call_us(lambda: cache.get_request(keyed), args.calls)),
                (
                    "wrapper create() hit",
                    per_call_us(lambda: client.chat.completions.create(**kw), args.calls),
                ),
                (
                    "wrapper create(stream=True) hit, iterated",
                    per_call_us(
                        lambda: list(client.chat.completions.create(**kw, stream=True)),
                        args.calls,
                    ),
                ),
            ]
            assert upstream.calls == 1, upstream.calls
    finally:
        server.stop()
    for name, us in rows:
        print(f"{name:44s} {us:8.1f} us/call")


if __name__ == "__main__":
    main()
