"""Realistic LLM responses for the benchmarks: text + usage + a tool call, about 1 KB and
16 KB when serialised as the incumbent's JSON. Deterministic (seeded), so every run and every
contestant stores the same response."""

from __future__ import annotations

import json
import random
from typing import Any

_VOCAB = (
    "the cache model request response token latency fleet worker server memory index "
    "entry value result answer question context prompt system user assistant "
    "function argument schema retrieval document summary analysis customer order "
    "invoice refund shipping address account balance policy report quarter revenue "
    "growth forecast risk because therefore however although which would should "
    "could might must will can a an of to in for on with by from at as is are was "
    "were be been has have had not first second next finally also more most less "
    "very quite rather only just even "
)
_WORDS = tuple(_VOCAB.split())


def _text(rng: random.Random, n_chars: int) -> str:
    out: list[str] = []
    length = 0
    sentence = 0
    while length < n_chars:
        w = rng.choice(_WORDS)
        if sentence == 0:
            w = w.capitalize()
        sentence += 1
        if sentence > rng.randint(8, 18):
            w += "."
            sentence = 0
        out.append(w)
        length += len(w) + 1
    return " ".join(out)[:n_chars]


def response_fields(target_json_bytes: int, seed: int = 7) -> dict[str, Any]:
    """Fields of an ``LLMResponse`` whose incumbent JSON is about ``target_json_bytes``."""
    rng = random.Random(seed)
    tool_args = {
        "query": _text(rng, 60),
        "filters": {"region": "eu-west", "since": "2024-01-01", "limit": 20},
    }
    base: dict[str, Any] = {
        "content": "",
        "tool_calls": [{"id": "call_8f2c1a", "name": "search_orders", "arguments": tool_args}],
        "finish_reason": "tool_call",
        "usage": {"prompt_tokens": 412, "completion_tokens": 0, "total_tokens": 0},
    }
    overhead = 330  # JSON of the fixed fields and the defaults the incumbent also writes
    n = max(16, target_json_bytes - overhead)
    base["content"] = _text(rng, n)
    completion = max(1, n // 4)
    base["usage"]["completion_tokens"] = completion
    base["usage"]["total_tokens"] = 412 + completion
    return base


REQUEST = (
    "Find the three most recent orders for customer 48213 that were shipped to Berlin and "
    "tell me whether any of them is eligible for a refund under the 30-day policy.",
    "You are a support assistant for an online shop. Answer briefly; call tools when needed.",
    "gpt-4o-mini",
    0.0,
    512,
)


def request(i: int | None = None) -> tuple[str, str, str, float, int]:
    """The benchmark request, or the ``i``-th distinct variant of it."""
    if i is None:
        return REQUEST
    um, sp, mo, t, mt = REQUEST
    return (f"{um} [variant {i}]", sp, mo, t, mt)


def completion_json(fields: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI ChatCompletion (as JSON data) with the same text and usage as ``fields``."""
    tc = fields["tool_calls"][0]
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": fields["content"],
                    "tool_calls": [
                        {
                            "id": tc["id"],
                            "type": "function",
                            "function": {
                                "name": tc["name"],
                                "arguments": json.dumps(tc["arguments"]),
                            },
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": fields["usage"],
    }
