"""The cost of signed entries (``signing_key=``): microseconds per get hit with and without
signing, on a private redis-server, plus the client-side MAC work alone.

    python bench/signing.py                  # ~20 s; 1 KB and 16 KB responses
    python bench/signing.py --seconds 3      # longer rounds, steadier numbers
    python bench/signing.py --json out.json  # also write the numbers as JSON

Method: one namespace per variant, filled with the same 200 responses; the variants' gets
are interleaved in short rounds, their order rotating (so a noisy neighbour slows all of
them alike) and each
reports the median over rounds of µs per ``get`` hit through the real cache (one client,
sync). "client decode" is ``Core.decode`` alone (MAC check, then msgpack and pydantic), best
of several loops, without Redis: the steadier measure of what signing adds per hit.
``sign``/``verify`` are the MAC work alone (HMAC-SHA256 over the envelope), best of
several timing loops, without Redis. Numbers from a shared machine: read the differences.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from functools import partial
from typing import Any

from fleetcache import FinishReason, LLMResponse, RedisExactCache
from fleetcache.core.envelope import Codec
from fleetcache.core.signing import Signer
from fleetcache.embedded import EmbeddedServer

KEY = b"k" * 32
_WORDS = ("cache", "fleet", "token", "model", "answer", "request", "redis", "shard", "entry")
N = 200


def _response(i: int, size: int) -> LLMResponse:
    rng = random.Random(i)
    words = [rng.choice(_WORDS) + str(rng.randrange(1000)) for _ in range(size // 4)]
    text = " ".join(words)[:size]  # text that zlib shrinks only a little, like real answers
    return LLMResponse(
        content=text,
        finish_reason=FinishReason.STOP,
        usage={"prompt_tokens": 120, "completion_tokens": 300, "total_tokens": 420},
    )


def _req(i: int) -> tuple[str, str, str, float, int]:
    return (f"question {i}", "be brief", "gpt-bench", 0.0, 512)


def _rounds(fns: dict[str, Callable[[], None]], seconds: float) -> dict[str, float]:
    """Median µs per call of each fn, interleaved in ~20 ms rounds for ``seconds`` each."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns.items())
    deadline = time.perf_counter() + seconds * len(fns)
    while time.perf_counter() < deadline:
        order = order[1:] + order[:1]  # rotate: no variant always runs first
        for name, fn in order:
            n = 0
            t0 = time.perf_counter()
            while n < 50:
                fn()
                n += 1
            samples[name].append((time.perf_counter() - t0) / n * 1e6)
    return {k: statistics.median(v) for k, v in samples.items()}


def _best_us(fn: Callable[[], Any], number: int = 2000) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def run(seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with EmbeddedServer() as server:
        server.start()
        for size in (1000, 16000):
            caches = {
                "unsigned": RedisExactCache(url=server.url, key_prefix=f"bench:u{size}"),
                "signed": RedisExactCache(
                    url=server.url, key_prefix=f"bench:s{size}", signing_key=KEY
                ),
                "signed, 2 keys (rotation; the 2nd verifies)": RedisExactCache(
                    url=server.url, key_prefix=f"bench:r{size}", signing_key=[b"n" * 32, KEY]
                ),
            }
            writer = RedisExactCache(url=server.url, key_prefix=f"bench:r{size}", signing_key=KEY)
            for i in range(N):
                r = _response(i, size)
                caches["unsigned"].put(*_req(i), r)
                caches["signed"].put(*_req(i), r)
                writer.put(*_req(i), r)  # signed with the rotation cache's SECOND key
            counters = dict.fromkeys(caches, 0)

            def getter(name: str, cache: RedisExactCache) -> Callable[[], None]:
                def get() -> None:
                    i = counters[name] = (counters[name] + 1) % N
                    if cache.get(*_req(i)) is None:
                        raise RuntimeError(f"{name}: unexpected miss")

                return get

            med = _rounds({n: getter(n, c) for n, c in caches.items()}, seconds)
            env = Codec(LLMResponse).encode(_response(1, size))
            signer = Signer([KEY], "bench:s", 0x02)
            signed = signer.sign("ab" * 16, env)
            cores = {
                "unsigned": caches["unsigned"]._core,
                "signed": caches["signed"]._core,
            }
            raws = {k: c.encode(_response(1, size), "ab" * 16) for k, c in cores.items()}
            client = {
                k: _best_us(partial(c.decode, raws[k], "ab" * 16), number=500)
                for k, c in cores.items()
            }
            out[f"{size} B"] = {
                "get hit, µs": med,
                "client decode (MAC check + msgpack + validation), µs": client,
                "sign alone, µs": _best_us(partial(signer.sign, "ab" * 16, env)),
                "verify alone, µs": _best_us(partial(signer.verify, "ab" * 16, signed)),
                "envelope bytes": {"unsigned": len(env), "signed": len(signed)},
            }
            for c in (*caches.values(), writer):
                c.clear()
                c.close()
    return out


def render(res: dict[str, Any]) -> str:
    lines = [
        "| response | get hit, unsigned | signed | signed, rotation (2nd key) | "
        "client decode, unsigned / signed | sign alone | verify alone | envelope bytes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, r in res.items():
        g = r["get hit, µs"]
        u, s, k2 = (g[k] for k in g)
        b = r["envelope bytes"]
        cd = r["client decode (MAC check + msgpack + validation), µs"]
        lines.append(
            f"| {size} | {u:.1f} µs | {s:.1f} µs ({s - u:+.1f}) | {k2:.1f} µs ({k2 - u:+.1f}) | "
            f"{cd['unsigned']:.1f} / {cd['signed']:.1f} µs | "
            f"{r['sign alone, µs']:.2f} µs | {r['verify alone, µs']:.2f} µs | "
            f"{b['unsigned']:,} -> {b['signed']:,} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=1.5, help="seconds per variant and size")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    res = run(args.seconds)
    print(render(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
