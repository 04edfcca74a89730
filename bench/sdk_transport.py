"""What the caching transport adds under the OpenAI SDK (a ``make bench`` section, also
standalone):

- ``create()`` from a plain ``httpx2.MockTransport`` answering the same bytes (the floor:
  the SDK building its ``ChatCompletion`` from a JSON body);
- ``create()`` hit through ``fleetcache.integrations.openai.cached`` (key, one Redis round
  trip, replay), and the paired ratio to the floor (target <= 1.2x);
- ``create(stream=True)`` hit, iterated;
- ``embeddings.create`` with 1,000 inputs, 90 % of them cached (one ``get_many``, 100 sent
  upstream) against the same call sending all 1,000 to the mock upstream;
- the bytes of the entry a streamed and a non-streamed miss of the same 1 KB answer store
  (the transport stores the assembled answer either way), next to the raw SSE
  (``bench/stream_bytes.py``).

    python -m bench.sdk_transport [--rounds 7] [--calls 300] [--json]

Paired rounds: each round times ``--calls`` plain calls and ``--calls`` hits back to back
(alternating which goes first), so load from other processes hits both alike; the table
gives the median us per call over the rounds and the median of the per-round ratios
(embeddings: ``--calls // 100`` calls a round). One client, a small completion (one
sentence and one tool call). Needs the ``openai`` extra; standalone it starts its own
``redis-server`` on a free loopback port.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.timing import median
from fleetcache import RedisExactCache, cache_info
from fleetcache.core.keys import RequestKey
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
        #: when set, chat completions answer this (streamed 4 characters an event when asked)
        self.stream_answer: dict[str, Any] | None = None

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
        if self.stream_answer is not None:
            asked = json.loads(request.content)
            if not asked.get("stream"):
                return httpx2.Response(200, json=self.stream_answer)
            from bench.stream_bytes import wire

            content = self.stream_answer["choices"][0]["message"]["content"]
            return httpx2.Response(
                200,
                content=wire(len(content), 4),
                headers={"content-type": "text/event-stream"},
            )
        return httpx2.Response(200, content=self.body, headers={"content-type": "application/json"})

    def client(self) -> Any:
        import httpx2
        import openai

        http = httpx2.Client(transport=httpx2.MockTransport(self._handle))
        return openai.OpenAI(api_key="sk-fake", http_client=http, max_retries=0)


def paired_us(
    fns: dict[str, Callable[[], Any]], calls: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """``(wall, cpu)``: us per call of each function per round, in wall time and in this
    process's CPU time (``time.process_time``: the client's own work, which the load of
    other processes on a shared machine does not inflate; the Redis server's CPU is not
    in it). Each round times ``calls`` calls of every function back to back, the order
    rotating between rounds."""
    names = list(fns)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn = fns[name]
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(calls):
                fn()
            wall[name].append((time.perf_counter() - w0) / calls * 1e6)
            cpu[name].append((time.process_time() - c0) / calls * 1e6)
    return wall, cpu


def _summary(
    runs: tuple[dict[str, list[float]], dict[str, list[float]]], base: str
) -> dict[str, Any]:
    """Per function: median us per call (wall, ``cpu``) and the median of the per-round
    ratios to ``base`` (``ratio`` wall, ``cpu_ratio``), with the ratios of each round."""
    wall, cpu = runs
    out: dict[str, Any] = {}
    for name in wall:
        row: dict[str, Any] = {"us": round(median(wall[name]), 1)}
        row["cpu_us"] = round(median(cpu[name]), 1)
        if name != base:
            for label, runs_ in (("ratio", wall), ("cpu_ratio", cpu)):
                ratios = [a / b for a, b in zip(runs_[name], runs_[base], strict=True)]
                row[label] = round(median(ratios), 3)
                row[label + "s"] = [round(x, 3) for x in ratios]
        out[name] = row
    return out


def _stream_answer(chars: int = 1024) -> dict[str, Any]:
    words = "The quick brown fox jumps over the lazy dog and keeps on running. "
    body: dict[str, Any] = json.loads(json.dumps(COMPLETION))
    msg = body["choices"][0]["message"]
    msg["content"] = (words * (chars // len(words) + 1))[:chars]
    del msg["tool_calls"]
    body["choices"][0]["finish_reason"] = "stop"
    return body


def entry_bytes(cache: RedisExactCache, upstream: FakeOpenAI) -> dict[str, int]:
    """The stored bytes (``STRLEN`` of the entry) of a non-streamed and of a streamed miss
    of the same 1 KB chat answer (streamed 4 characters an event by the fake upstream)."""
    upstream.stream_answer = _stream_answer()
    client = cached(upstream.client(), cache)
    out: dict[str, int] = {}
    for label, stream in (("non_streamed", False), ("streamed", True)):
        question = [{"role": "user", "content": f"a 1 KB answer, {label}"}]
        got = client.chat.completions.create(model="gpt-4o-mini", messages=question, stream=stream)
        if stream:
            list(got)
        info = cache_info(got)
        assert info is not None and not info.hit
        core = cache._core
        name = core.keys.entry(core.keys.shard_of(info.digest), info.digest)
        out[f"{label}_entry_bytes"] = int(cache.client.strlen(name))
    upstream.stream_answer = None
    return out


def measure(url: str, rounds: int = 7, calls: int = 300) -> dict[str, Any]:
    """Every row on the server at ``url`` (a throwaway namespace, cleared after); for
    ``bench/run.py`` to call with its server."""
    from bench.stream_bytes import measure as stream_sizes

    with RedisExactCache(url=url, key_prefix="bench:sdk") as cache:
        cache.clear()
        upstream = FakeOpenAI()
        plain = upstream.client()
        client = cached(upstream.client(), cache)
        question = [{"role": "user", "content": "What is the capital of France?"}]
        kw: dict[str, Any] = {"model": "gpt-4o-mini", "messages": question}
        first = client.chat.completions.create(**kw)
        info = cache_info(first)
        assert info is not None
        key = RequestKey(cache._core.keys, info.digest, "gpt-4o-mini")
        for _ in range(50):  # warm both
            plain.chat.completions.create(**kw)
            client.chat.completions.create(**kw)
        chat = _summary(
            paired_us(
                {
                    "plain": lambda: plain.chat.completions.create(**kw),
                    "hit": lambda: client.chat.completions.create(**kw),
                    "stream_hit": lambda: list(client.chat.completions.create(**kw, stream=True)),
                    "redis_only": lambda: cache._key_get(key),
                },
                calls,
                rounds,
            ),
            "plain",
        )
        words = [f"input number {i}" for i in range(1000)]
        client.embeddings.create(model="e", input=words[:900], encoding_format="float")

        def mixed() -> None:
            client.embeddings.create(
                model="e",
                input=words,
                encoding_format="float",
                extra_headers={"x-fleetcache-control": "no-store"},
            )

        def all_sent() -> None:
            plain.embeddings.create(model="e", input=words, encoding_format="float")

        n = max(1, calls // 100)
        sent_before = upstream.calls
        emb = _summary(paired_us({"all_sent": all_sent, "cached_90": mixed}, n, rounds), "all_sent")
        assert upstream.calls == sent_before + 2 * n * rounds  # each call sends once
        sizes = entry_bytes(cache, upstream)
        cache.clear()
    return {
        "rounds": rounds,
        "calls": calls,
        "chat": chat,
        "embeddings": emb,
        "entry_bytes": sizes,
        "stream_sizes": stream_sizes(),
        "target_ratio": 1.2,
    }


def render(res: dict[str, Any]) -> str:
    """The rows as a markdown table (for RESULTS.md and the standalone run)."""
    c, e, b, z = res["chat"], res["embeddings"], res["entry_bytes"], res["stream_sizes"]

    def row(name: str, r: dict[str, Any], note: str = "") -> str:
        if "ratio" not in r:
            return f"| {name} | {r['us']:,} | {r['cpu_us']:,} | 1 | 1 |"
        return (
            f"| {name} | {r['us']:,} | {r['cpu_us']:,} | {r['ratio']:.2f}x | "
            f"{r['cpu_ratio']:.2f}x{note} |"
        )

    target = f" (target <= {res['target_ratio']}x)"
    return "\n".join(
        [
            "| row | wall us/call | client CPU us/call | wall ratio | CPU ratio |",
            "|---|---|---|---|---|",
            row("SDK `create()`, plain mock transport", c["plain"]),
            row("SDK `create()` hit, caching transport", c["hit"], target),
            row("SDK `create(stream=True)` hit, iterated", c["stream_hit"]),
            row("the hit's Redis round trip alone (`_key_get`, no SDK)", c["redis_only"]),
            row("embeddings, 1,000 inputs all sent (plain)", e["all_sent"]),
            row("embeddings, 1,000 inputs 90 % cached (100 sent)", e["cached_90"]),
            "",
            "| entry of a 1 KB chat answer | bytes |",
            "|---|---|",
            f"| non-streamed miss, stored entry | {b['non_streamed_entry_bytes']:,} |",
            f"| streamed miss (4 chars an event), stored entry | {b['streamed_entry_bytes']:,} |",
            f"| the raw SSE of that stream ({z['events']} events), if it were stored | "
            f"{z['sse_bytes']:,} ({z['sse_zlib_bytes']:,} after zlib) |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args()
    binary = redis_server_bin()
    if binary is None:
        sys.exit("redis-server not found")
    server = EmbeddedServer(binary).start()
    try:
        res = measure(server.url, args.rounds, args.calls)
    finally:
        server.stop()
    print(json.dumps(res) if args.json else render(res))


if __name__ == "__main__":
    main()
