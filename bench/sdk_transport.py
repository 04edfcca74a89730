"""What the caching transport adds under the OpenAI SDK (standalone; not part of ``make bench``):

- ``create()`` from a plain ``httpx2.MockTransport`` answering the same bytes (the floor:
  the SDK building its ``ChatCompletion`` from a JSON body);
- ``create()`` hit through ``fleetcache.integrations.openai.cached`` (key, one Redis round
  trip, replay), and the ratio to the floor (target <= 1.2x);
- ``create(stream=True)`` hit, iterated;
- ``embeddings.create`` with 1,000 inputs, 90 % of them cached (one ``get_many``, 100 sent
  upstream) against the same call sending all 1,000 to the mock upstream.

    python -m bench.sdk_transport [--calls 3000]

Microseconds per call, best of 3 runs of ``--calls`` calls each (embeddings: ``--calls //
100``), one client, a small completion (one sentence and one tool call). Needs the
``openai`` extra; starts its own ``redis-server`` on a free loopback port.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from fleetcache import RedisExactCache
from fleetcache.embedded import EmbeddedServer, redis_server_bin
from fleetcache.integrations.openai import cached

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
    """An OpenAI-shaped mock upstream: fixed completion bytes, embeddings per input;
    ``calls`` counts what reached it."""

    def __init__(self) -> None:
        self.calls = 0
        self.body = json.dumps(COMPLETION).encode()

    def _handle(self, request: Any) -> Any:
        import httpx2

        self.calls += 1
        if request.url.path.endswith("/embeddings"):
            inputs = json.loads(request.content)["input"]
            data = [
                {"object": "embedding", "index": i, "embedding": [float(len(s)), 0.25, 0.5]}
                for i, s in enumerate(inputs)
            ]
            usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
            body = {"object": "list", "data": data, "model": "e", "usage": usage}
            return httpx2.Response(200, json=body)
        return httpx2.Response(200, content=self.body, headers={"content-type": "application/json"})

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
            plain = upstream.client()
            client = cached(upstream.client(), cache)
            question = [{"role": "user", "content": "What is the capital of France?"}]
            kw: dict[str, Any] = {"model": "gpt-4o-mini", "messages": question}
            client.chat.completions.create(**kw)
            base = per_call_us(lambda: plain.chat.completions.create(**kw), args.calls)
            hit = per_call_us(lambda: client.chat.completions.create(**kw), args.calls)
            stream = per_call_us(
                lambda: list(client.chat.completions.create(**kw, stream=True)), args.calls
            )
            rows = [
                ("SDK create(), plain mock transport", base, ""),
                ("SDK create() hit, caching transport", hit, f"{hit / base:.2f}x"),
                ("SDK create(stream=True) hit, iterated", stream, f"{stream / base:.2f}x"),
            ]
            words = [f"input number {i}" for i in range(1000)]
            client.embeddings.create(model="e", input=words[:900], encoding_format="float")
            n = max(3, args.calls // 100)

            def mixed() -> None:
                client.embeddings.create(
                    model="e",
                    input=words,
                    encoding_format="float",
                    extra_headers={"x-fleetcache-control": "no-store"},
                )

            def all_sent() -> None:
                plain.embeddings.create(model="e", input=words, encoding_format="float")

            sent_before = upstream.calls
            emb = per_call_us(mixed, n)
            assert upstream.calls == sent_before + 3 * n  # 100 missing inputs each time
            emb_all = per_call_us(all_sent, n)
            rows += [
                ("embeddings 1,000 inputs, all sent (plain)", emb_all, ""),
                ("embeddings 1,000 inputs, 90 % cached", emb, f"{emb / emb_all:.2f}x"),
            ]
    finally:
        server.stop()
    for name, us, ratio in rows:
        print(f"{name:44s} {us:10.1f} us/call {ratio}")


if __name__ == "__main__":
    main()
