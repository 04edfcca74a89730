"""One demo run: choose the server, start the workers, sample the fleet-wide numbers while
they run, then print the summary and write the chart. ``main`` is ``python -m
fleetcache.demo`` (the same as ``fleetcache demo``)."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .._admin import EXIT_FAILED, EXIT_OK, AdminError, connect, recorded_shards, redact, run_command
from ..cache import RedisExactCache
from .args import add_demo_arguments, check_args
from .chart import MISSING_HINT, draw_chart
from .server import choose_server
from .view import Sample, live_line, summary
from .workers import ERRORS, LLM, REQ, SLOTS, WAIT_US, WorkerConfig, sum_slots, worker


def run_demo(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Run the demo with parsed ``args`` (see ``add_demo_arguments``); returns an exit code."""
    check_args(args)
    url, server = choose_server(getattr(args, "url", None), embedded=args.embedded, err=err)
    try:
        return _run(args, url, out, err)
    finally:
        if server is not None:
            server.close()
            err.write(f"stopped the throwaway server on {server.url}\n")


def _run(args: argparse.Namespace, url: str, out: TextIO, err: TextIO) -> int:
    admin = connect(url)
    shards = recorded_shards(admin, args.prefix) or 1
    cache = RedisExactCache(client=admin, key_prefix=args.prefix, shards=shards)
    cache.clear()  # start from zero: the demo's own namespace only
    out.write(
        f"fleet demo: {args.workers} workers, {args.duration:g} s, {args.prompts:,} prompts "
        f"(Zipf s={args.zipf:g}), simulated LLM ~{args.latency * 1000:.0f} ms, "
        f"namespace {args.prefix!r} on {redact(url)}\n"
    )
    ctx = mp.get_context("spawn")  # portable (macOS, Windows) and nothing inherited by accident
    counters = ctx.Array("q", args.workers * SLOTS, lock=False)
    stop = ctx.Event()
    cfg = WorkerConfig(
        url=url,
        prefix=args.prefix,
        shards=shards,
        prompts=args.prompts,
        zipf=args.zipf,
        latency=args.latency,
        rate=args.rate,
        ttl=args.ttl,
        seed=args.seed,
        max_requests=max(1000, int(args.duration * 20_000)),
    )
    readies = [ctx.Event() for _ in range(args.workers)]
    procs = [
        ctx.Process(target=worker, args=(i, cfg, counters, stop, readies[i]), daemon=True)
        for i in range(args.workers)
    ]
    for p in procs:
        p.start()
    for ev, p in zip(readies, procs, strict=True):
        if not ev.wait(60):  # bounded wait for worker start-up (imports)
            stop.set()
            raise AdminError(f"worker process {p.pid} did not start", EXIT_FAILED)
    t0 = time.monotonic()

    def sample() -> Sample:
        fs = cache.fleet_stats()
        return Sample(
            t=time.monotonic() - t0,
            requests=sum_slots(counters, args.workers, REQ),
            llm_calls=sum_slots(counters, args.workers, LLM),
            hits=fs.hits,
            misses=fs.misses,
            coalesced=fs.coalesced,
            size=fs.size,
            tokens_saved=fs.tokens_saved,
            cost_saved_usd=fs.cost_saved_usd,
            seconds_saved=fs.seconds_saved,
        )

    samples = [sample()]
    interrupted = False
    try:
        _watch(samples, sample, args.duration, args.interval, out)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
                p.join(5)
    elapsed = time.monotonic() - t0
    final = sample()
    final.t = min(final.t, elapsed)
    samples.append(final)
    fs = cache.fleet_stats()
    errors = sum_slots(counters, args.workers, ERRORS)
    out.write(
        summary(
            fs,
            final,
            workers=args.workers,
            prompts=args.prompts,
            zipf=args.zipf,
            elapsed=elapsed,
            wait_s=sum_slots(counters, args.workers, WAIT_US) / 1e6,
            errors=errors,
        )
        + "\n"
    )
    if args.chart:
        title = (
            f"fleetcache demo: {args.workers} workers, {final.requests:,} requests, "
            f"{args.prompts:,} prompts"
        )
        _chart(samples, Path(args.chart), title, out, err)
    cache.close()
    admin.close()
    if interrupted:
        return 130
    return EXIT_OK if errors == 0 else EXIT_FAILED


def _watch(
    samples: list[Sample], sample: Any, duration: float, interval: float, out: TextIO
) -> None:
    """Sample every ``interval`` s for ``duration`` s; show the live line (rewritten in place
    on a terminal, else a line every 2 s)."""
    tty = out.isatty()
    t0 = time.monotonic()
    last_print = -1e9
    while time.monotonic() - t0 < duration:
        time.sleep(min(interval, max(0.0, duration - (time.monotonic() - t0))))
        s = sample()
        line = live_line(s, samples[-1])
        samples.append(s)
        if tty:
            out.write("\r" + line + "\x1b[K")
            out.flush()
        elif s.t - last_print >= 2.0:
            out.write(line + "\n")
            out.flush()
            last_print = s.t
    if tty:
        out.write("\n")


def _chart(samples: list[Sample], path: Path, title: str, out: TextIO, err: TextIO) -> None:
    try:
        draw_chart(samples, path, title)
    except ImportError:  # matplotlib is the demo extra's: the run itself still counts
        err.write(MISSING_HINT + "\n")
        return
    except OSError as exc:
        raise AdminError(f"could not write the chart {str(path)!r}: {exc}") from exc
    out.write(f"\nchart: {path.resolve()}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fleetcache.demo [options]``: the same as ``fleetcache demo``."""
    parser = argparse.ArgumentParser(
        prog="fleetcache demo",
        description="W worker processes send Zipf-distributed prompts to a simulated LLM "
        "through one shared fleetcache, with live fleet-wide numbers, a summary and a chart.",
    )
    add_demo_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or bad arguments (2)
        return int(exc.code) if isinstance(exc.code, int) else 2
    return run_command(lambda: run_demo(args, out=sys.stdout, err=sys.stderr), sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
