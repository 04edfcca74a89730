"""Cost of the OpenTelemetry spans on a cache hit, per mode (standalone, a private server).

Modes, each in its own process: ``absent`` (``opentelemetry`` cannot be imported, as
without the ``otel`` extra), ``api`` (``opentelemetry-api`` installed, no SDK configured:
the default for a library user), ``sdk`` (an SDK ``TracerProvider`` with no exporter: the
span is made and recorded, then dropped). For each: client us per ``get`` hit (median of
``--rounds`` rounds of ``--calls`` sequential gets, the modes interleaved round by round),
and the us of the span wrapping alone (``_otel.span(...)`` + ``done``, no I/O).
Usage: ``python -m bench.otel_overhead [--rounds 7] [--calls 2000]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from fleetcache.embedded import EmbeddedServer

MODES = ("absent", "api", "sdk")

_CHILD = r"""
import json, sys, time
mode, url, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "absent":
    sys.modules["opentelemetry"] = None  # import fails, as without the extra
elif mode == "sdk":
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    trace.set_tracer_provider(TracerProvider())
from fleetcache import LLMResponse, RedisExactCache, _otel
cache = RedisExactCache(url=url, key_prefix="bench:otel:" + mode, prices={"m": (2.5, 10.0)})
fields = ("q", "s", "m", 0.0, 64)
usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
cache.put(*fields, LLMResponse(content="x" * 900, usage=usage), upstream_ms=800)
for _ in range(200):
    cache.get(*fields)
t0 = time.perf_counter()
for _ in range(calls):
    cache.get(*fields)
get_us = (time.perf_counter() - t0) / calls * 1e6
core = cache._core
n = calls * 20
t0 = time.perf_counter()
for _ in range(n):
    with _otel.span("get", core, "m") as s:
        s.done(True, fields=fields)
wrap_us = (time.perf_counter() - t0) / n * 1e6
print(json.dumps({"get_us": get_us, "wrap_us": wrap_us}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=2000)
    a = ap.parse_args()
    got: dict[str, dict[str, list[float]]] = {m: {"get_us": [], "wrap_us": []} for m in MODES}
    with EmbeddedServer() as server:
        server.start()
        for _ in range(a.rounds):
            for mode in MODES:
                out = subprocess.run(
                    [sys.executable, "-c", _CHILD, mode, server.url, str(a.calls)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row = json.loads(out.stdout)
                for k in ("get_us", "wrap_us"):
                    got[mode][k].append(row[k])
    print(f"{'mode':<8}{'us per get (hit)':>18}{'us span wrap alone':>20}")
    for mode in MODES:
        g = statistics.median(got[mode]["get_us"])
        w = statistics.median(got[mode]["wrap_us"])
        print(f"{mode:<8}{g:>18.1f}{w:>20.3f}")


if __name__ == "__main__":
    main()
