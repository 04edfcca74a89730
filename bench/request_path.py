"""The request path's two numbers, standalone:

1. ``get_request`` hit ops/s for a 10-message request with tools, against the five-field
   ``get`` hit, on one client, both answering an equally large response (~1 KB), measured
   in alternating blocks (``paired``) so load from other processes hits both alike;
   target ratio >= 0.8.
2. ``request_digest`` cost in us per KB of canonical request, at 1, 10 and 100 KB.

    python -m bench.request_path [--seconds 3] [--json]

Starts its own ``redis-server`` on a free loopback port (``fleetcache.embedded``); prints a
small table (or one JSON object with ``--json``, for ``bench/run.py`` to fold in).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench.payloads import completion_json, response_fields
from bench.timing import paired
from fleetcache import LLMResponse, RedisExactCache, request_digest
from fleetcache.core.canonical import canonical_json
from fleetcache.embedded import EmbeddedServer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"Look up {name.replace('_', ' ')} for the current customer.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "free text"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                    "region": {"type": "string", "enum": ["eu-west", "us-east", "ap-south"]},
                },
                "required": ["query"],
            },
        },
    }
    for name in ("search_orders", "get_invoice", "refund_status")
]


def ten_message_request(i: int = 0) -> dict[str, Any]:
    """A realistic multi-turn chat request: system + 9 turns (a tool call and its result
    among them), 3 tools, sampling parameters."""
    msgs: list[dict[str, Any]] = [{"role": "system", "content": "You are a support agent."}]
    for t in range(4):
        msgs.append({"role": "user", "content": f"Question {i}-{t}: where is my order #{t}?"})
        msgs.append({"role": "assistant", "content": f"Order {t} ships tomorrow from Leeds."})
    msgs[-1] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "search_orders", "arguments": '{"query": "order 3"}'},
            }
        ],
    }
    msgs.append({"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'})
    return {
        "model": "gpt-4o-mini",
        "messages": msgs,
        "tools": TOOLS,
        "tool_choice": "auto",
        "temperature": 0.2,
        "top_p": 1.0,
        "seed": 42,
        "max_tokens": 512,
        "stream": False,
        "user": "customer-17",
    }


def digest_us_per_kb() -> dict[str, float]:
    """Best-of-5 time of ``request_digest`` per KB of canonical JSON, at ~1/10/100 KB."""
    out: dict[str, float] = {}
    base = ten_message_request()
    for label, turns in (("1KB", 0), ("10KB", 6), ("100KB", 90)):
        req = dict(base)
        extra = [{"role": "user", "content": "More detail, please. " * 20} for _ in range(turns)]
        req["messages"] = base["messages"] + extra
        size_kb = len(canonical_json(req)) / 1024
        if label == "1KB":  # trim the tools off to get near 1 KB
            req = {k: v for k, v in req.items() if k != "tools"}
            size_kb = len(canonical_json(req)) / 1024
        reps = max(20, int(2000 / max(size_kb, 1)))
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(reps):
                request_digest(req)
            best = min(best, (time.perf_counter() - t0) / reps)
        out[label] = round(best * 1e6 / size_kb, 2)
        out[f"{label}_size_kb"] = round(size_kb, 2)
    return out


def measure(url: str, seconds: float = 3.0) -> dict[str, Any]:
    """Both numbers on the server at ``url`` (a throwaway namespace, cleared after):
    ``get_ops``/``get_request_ops`` (paired, one client), their ``ratio``, and
    ``digest_us_per_kb`` at ~1/10/100 KB. For ``bench/run.py`` to call with its server."""
    fields = response_fields(1024)
    five = ("What is the status of order 3?", "You are a support agent.", "gpt-4o-mini", 0.2, 512)
    req = ten_message_request()
    cache = RedisExactCache(url=url, key_prefix="bench:request-path")
    try:
        cache.clear()
        cache.put(*five, LLMResponse(**fields))
        cache.put_request(req, completion_json(fields))
        assert cache.get(*five) is not None and cache.get_request(req) is not None
        rates = paired(
            {"get": lambda: cache.get(*five), "get_request": lambda: cache.get_request(req)},
            seconds,
        )
        cache.clear()
    finally:
        cache.close()
    return {
        "request_kb": round(len(canonical_json(req)) / 1024, 2),
        "get_ops": round(rates["get"]),
        "get_request_ops": round(rates["get_request"]),
        "ratio": round(rates["get_request"] / rates["get"], 3),
        "target_ratio": 0.8,
        "digest_us_per_kb": digest_us_per_kb(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="per contestant (default 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    with EmbeddedServer().start() as srv:
        res = measure(srv.url, args.seconds)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"10-message request with 3 tools: {res['request_kb']} KB canonical")
    print(f"five-field get hit      {res['get_ops']:>8,} ops/s")
    print(f"get_request hit         {res['get_request_ops']:>8,} ops/s")
    print(f"ratio                   {res['ratio']:>8} (target >= 0.8)")
    d = res["digest_us_per_kb"]
    for label in ("1KB", "10KB", "100KB"):
        print(f"request_digest, {label:>5}  {d[label]:>8} us/KB  ({d[label + '_size_kb']} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
