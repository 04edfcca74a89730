"""The ``fleetcache`` command: look after a namespace from a shell.

    fleetcache stats [--url URL] [--prefix P] [--json] [--watch SECONDS] [--count N]
    fleetcache clear [--yes]          delete every entry and reset the counters
    fleetcache reconcile              drop index members whose entry vanished
    fleetcache reset-stats            zero the counters, keep the entries
    fleetcache demo [...]             the fleet demo (see ``fleetcache demo --help``)
    fleetcache metrics [--port 9108]  serve the fleet-wide counters to Prometheus

``--url`` defaults to ``$REDIS_URL``, then ``redis://localhost:6379/0``; ``--prefix`` to
``ractogateway:exact``. Exit codes: 0 ok, 1 failed or declined, 2 bad arguments, 3 server
unreachable or refused the password, 4 namespace does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from redis.exceptions import RedisError

from ._admin import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    AdminError,
    default_url,
    open_namespace,
    redact,
    stats_dict,
)
from ._base import DEFAULT_PREFIX
from ._core import ChunkProgress
from ._models import FleetStats
from .errors import FleetCacheError

__all__ = ["build_parser", "main"]


# -- output helpers ---------------------------------------------------------------------------


class _Progress:
    """One status line: rewritten in place on a terminal, else at most one line a second."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.last = 0.0
        self.shown = False

    def update(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            self.out.write("\r" + text + "\x1b[K")
            self.out.flush()
            self.shown = True
        elif force or not self.shown or now - self.last >= 1.0:
            self.out.write(text + "\n")
            self.out.flush()
            self.last = now
            self.shown = True

    def done(self) -> None:
        if self.tty and self.shown:
            self.out.write("\n")
            self.out.flush()


def _n(v: int) -> str:
    return f"{v:,}"


def format_stats(fs: FleetStats, *, prefix: str, shards: int, url: str) -> str:
    """The readable table ``fleetcache stats`` prints."""
    rows = [
        ("hits", _n(fs.hits)),
        ("misses", _n(fs.misses)),
        ("hit rate", f"{fs.hit_rate:.1%}"),
        ("entries (live)", _n(fs.size)),
        ("tokens saved", _n(fs.tokens_saved)),
        ("puts", _n(fs.puts)),
        ("coalesced", _n(fs.coalesced)),
        ("not stored", _n(fs.not_stored)),
        ("invalidations", _n(fs.invalidations)),
        ("expired", _n(fs.expired)),
        ("evicted", _n(fs.evicted)),
        ("corrupt", _n(fs.corrupt)),
    ]
    width = max(len(v) for _, v in rows)
    lines = [f"namespace {prefix!r} on {redact(url)} (shards={shards})"]
    lines += [f"  {k:<16}{v:>{width}}" for k, v in rows]
    if fs.by_model:
        names = sorted(fs.by_model)
        w = max(12, *(len(n) for n in names))
        lines.append("")
        lines.append(f"  {'model':<{w}}  {'hits':>10}  {'misses':>10}  {'hit rate':>8}")
        for name in names:
            m = fs.by_model[name]
            lines.append(f"  {name:<{w}}  {_n(m.hits):>10}  {_n(m.misses):>10}  {m.hit_rate:>8.1%}")
    return "\n".join(lines)


# -- commands ---------------------------------------------------------------------------------


def cmd_stats(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.watch is not None and not args.watch > 0:
        raise AdminError("--watch needs a number of seconds > 0", EXIT_USAGE)
    if args.count is not None and args.count < 1:
        raise AdminError("--count needs a number >= 1", EXIT_USAGE)
    with open_namespace(args.url, args.prefix) as cache:
        n = 0
        tty = out.isatty()
        while True:
            fs = cache.fleet_stats()
            n += 1
            if args.json:
                body = stats_dict(fs, prefix=cache.key_prefix, shards=cache.shards)
                # one JSON object per line, so `--watch --json` is a JSON Lines stream
                out.write(json.dumps(body, sort_keys=False) + "\n")
            else:
                table = format_stats(fs, prefix=cache.key_prefix, shards=cache.shards, url=args.url)
                if args.watch is not None:
                    stamp = time.strftime("%H:%M:%S")
                    table = f"{table}\n\n  refreshed {stamp}, every {args.watch:g} s (Ctrl-C quits)"
                    if tty:
                        out.write("\x1b[H\x1b[J")  # cursor home, clear screen: refresh in place
                    elif n > 1:
                        out.write("\n")
                out.write(table + "\n")
            out.flush()
            if args.watch is None or (args.count is not None and n >= args.count):
                return EXIT_OK
            time.sleep(args.watch)


def cmd_clear(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_namespace(args.url, args.prefix) as cache:
        before = cache.fleet_stats().size
        where = f"namespace {cache.key_prefix!r} on {redact(args.url)}"
        if not args.yes:
            out.write(f"Delete all {_n(before)} entries of {where} and reset its counters? [y/N] ")
            out.flush()
            try:
                answer = sys.stdin.readline()
            except (EOFError, KeyboardInterrupt):
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                out.write("\naborted: nothing deleted (answer y, or pass --yes)\n")
                return EXIT_FAILED
        bar = _Progress(err)
        show = before > 500

        def progress(p: ChunkProgress) -> None:
            if show:
                bar.update(f"clearing shard {p.shard + 1}/{p.shards}: {_n(p.left)} entries left")

        cache.clear(progress=progress)
        bar.done()
        out.write(f"cleared {where}: {_n(before)} live entries deleted, counters reset\n")
    return EXIT_OK


def cmd_reconcile(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_namespace(args.url, args.prefix) as cache:
        before = cache.fleet_stats()
        bar = _Progress(err)
        last: list[ChunkProgress] = []

        def progress(p: ChunkProgress) -> None:
            last[:] = [p]
            bar.update(
                f"reconciling shard {p.shard + 1}/{p.shards}: {_n(p.checked)} index members "
                f"checked, {_n(p.removed)} removed"
            )

        removed = cache.reconcile(progress=progress)
        bar.done()
        after = cache.fleet_stats()
        checked = last[0].checked if last else 0
        expired = max(0, after.expired - before.expired)
        evicted = max(0, after.evicted - before.evicted)
        out.write(
            f"reconciled namespace {cache.key_prefix!r}: checked {_n(checked)} index members, "
            f"removed {_n(removed)} whose entry was gone ({_n(expired)} expired, "
            f"{_n(evicted)} evicted); {_n(after.size)} live entries\n"
        )
    return EXIT_OK


def cmd_reset_stats(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_namespace(args.url, args.prefix) as cache:
        cache.reset_stats()
        size = len(cache)
        out.write(f"counters of namespace {cache.key_prefix!r} reset; {_n(size)} entries kept\n")
    return EXIT_OK


def cmd_metrics(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        from .metrics import serve
    except ImportError as exc:  # prometheus_client is an optional extra
        raise AdminError(
            f"fleetcache metrics needs prometheus_client ({exc}): "
            "pip install 'fleetcache[metrics]'",
            EXIT_FAILED,
        ) from exc
    return serve(url=args.url, prefix=args.prefix, host=args.host, port=args.port, out=out)


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .demo import run_demo

    return run_demo(args, out=out, err=err)


# -- parser -----------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        default=None,
        help="Redis/Valkey URL (default: $REDIS_URL, else redis://localhost:6379/0); "
        "a password goes in it: redis://:PASSWORD@host:6379/0",
    )
    p.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help=f"the namespace (key_prefix) to work on (default: {DEFAULT_PREFIX})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fleetcache`` command."""
    parser = argparse.ArgumentParser(
        prog="fleetcache",
        description="Look after a fleetcache namespace on Redis/Valkey: fleet-wide stats, "
        "clear, reconcile, reset counters; run the fleet demo; serve Prometheus metrics.",
        epilog="Exit codes: 0 ok, 1 failed or declined, 2 bad arguments, 3 server unreachable "
        "or refused the password, 4 namespace does not exist.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("stats", help="fleet-wide hits, misses, hit rate, size, tokens saved")
    _common(p)
    p.add_argument("--json", action="store_true", help="print JSON (one object per refresh)")
    p.add_argument(
        "--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C"
    )
    p.add_argument("--count", type=int, metavar="N", help="with --watch: stop after N refreshes")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("clear", help="delete every entry of the namespace, reset its counters")
    _common(p)
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_clear)

    p = sub.add_parser("reconcile", help="drop index members whose entry vanished")
    _common(p)
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("reset-stats", help="zero the fleet counters (entries stay)")
    _common(p)
    p.set_defaults(func=cmd_reset_stats)

    p = sub.add_parser(
        "metrics", help="serve the namespace's fleet-wide counters to Prometheus over HTTP"
    )
    _common(p)
    p.add_argument("--port", type=int, default=9108, help="TCP port (default: 9108)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.set_defaults(func=cmd_metrics)

    from .demo import add_demo_arguments

    p = sub.add_parser(
        "demo",
        help="a fleet of worker processes sharing one cache in front of a simulated LLM",
        description="W worker processes send Zipf-distributed prompts to a simulated LLM "
        "through one shared fleetcache, with live fleet-wide numbers, a summary and a PNG chart.",
    )
    add_demo_arguments(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or bad arguments (2)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if getattr(args, "url", "unset") is None:
        args.url = default_url()
    out, err = sys.stdout, sys.stderr
    try:
        code: int = args.func(args, out, err)
    except AdminError as exc:
        err.write(f"fleetcache: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        err.write("\nfleetcache: interrupted\n")
        return 130
    except FleetCacheError as exc:
        cause = exc.__cause__
        err.write(f"fleetcache: error: {exc}\n")
        unreachable = isinstance(cause, (RedisError, OSError))
        return EXIT_UNREACHABLE if unreachable else EXIT_FAILED
    except RedisError as exc:
        err.write(f"fleetcache: error: Redis failed: {exc}\n")
        return EXIT_UNREACHABLE
    return code
